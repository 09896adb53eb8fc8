################################################################################
# General
################################################################################

variable "name" {
  description = "Name prefix for every resource (functions are \"<name>-<task>\", e.g. docfn-ocr)."
  type        = string
  default     = "docfn"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,23}$", var.name))
    error_message = "name must be 2-24 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "tags" {
  description = "Tags added to every resource that supports them."
  type        = map(string)
  default     = {}
}

################################################################################
# Task functions
################################################################################

variable "tasks" {
  description = <<-EOT
    The task functions to deploy, keyed by task name. Implemented: ocr, layout, table, parse,
    formula, chart, vlm and summarize (the default deploys exactly these; vlm, formula and chart
    answer 503 until the VLM pack, exported with `docfn models export-vlm --checkpoint`, is
    published). One ECR repository, Lambda function, function URL,
    SQS queue + DLQ, log group, IAM role and alarm set is created per entry. reserved_concurrency
    is the per-task rate limit (it caps concurrent containers). model_pack is the task's own pack,
    "<name>/<version>" under s3://BUCKET/models/ (DOCFN_MODEL_URI); role_packs maps each secondary
    pack's role to its "<name>/<version>" (DOCFN_<ROLE>_MODEL_URI): parse reads ocr (its OCR pack)
    and table_structure (SLANet-plus), table reads layout (the layout pack that finds tables on a
    page) and table_structure; formula and chart read only vlm (the VLM pack, made with `docfn
    models export-vlm`), which table (recognizer=vlm) and parse (vlm_blocks, engine=vlm) may read
    too when given one; summarize reads parse's three (layout, ocr, table_structure) for documents
    and, to write with the VLM pack, vlm. Left out, each falls back to its default pack (packs.tf). A deployed function never builds or downloads a
    pack itself: publish every pack named here first (README, "Publish the model packs").
    environment adds DOCFN_* settings such as DOCFN_MAX_BODY_BYTES. Omit a task to not deploy it.
  EOT
  type = map(object({
    memory_size                        = optional(number, 2048)
    timeout                            = optional(number, 60)
    ephemeral_storage                  = optional(number, 1024)
    reserved_concurrency               = optional(number, 10)
    architecture                       = optional(string, "x86_64")
    model_pack                         = optional(string)
    role_packs                         = optional(map(string), {})
    batch_size                         = optional(number, 1)
    maximum_batching_window_in_seconds = optional(number, 0)
    environment                        = optional(map(string), {})
  }))

  default = {
    ocr = {
      memory_size       = 2048
      timeout           = 60
      ephemeral_storage = 1024
      model_pack        = "ocr-ppocrv6-tiny/2"
    }
    layout = {
      memory_size       = 2048
      timeout           = 60
      ephemeral_storage = 1024
      model_pack        = "layout-cdla/2"
    }
    table = {
      memory_size       = 3008
      timeout           = 120
      ephemeral_storage = 2048
      model_pack        = "ocr-ppocrv6-tiny/2"
      role_packs        = { layout = "layout-cdla/2", table_structure = "table-slanet-plus/1" }
    }
    parse = {
      memory_size       = 3008
      timeout           = 300
      ephemeral_storage = 4096
      model_pack        = "layout-cdla/2"
      role_packs        = { ocr = "ocr-ppocrv6-tiny/2", table_structure = "table-slanet-plus/1" }
    }
    # The VLM functions (docs/vlm.md, "On Lambda"): an instance serves one request at a time, so a
    # page's blocks come as one request carrying many crops (at most 32), single crops as one each;
    # MinerU's client traffic (up to 100 requests at once) belongs on Knative. Figures: MinerU2.5 as
    # export-vlm makes it (int8 decoder + int8 vision tower; docs/benchmarks/vlm_2026-11-26.md, 2 vCPUs): a ~1.7 GB
    # pack, 8.2 s to load, ~2.3 GB peak RSS on one crop, block encode 1.7 s + prefill 0.5 s, decode
    # ~20 tokens/s (per-row int8: 11-20 % more, docs/benchmarks/vlm_int8.md).
    # formula, chart: 8192 MB for ~4.6 vCPUs (the VLM is CPU-bound; RSS needs ~3 GB with a full batch's
    # KV cache). A 32-crop request takes ~95 s at 2 vCPUs (32 x 2.6 s encode + prefill, two batches of
    # 50-token answers), so its deadline is 120 s (DOCFN_VLM_TIMEOUT_SECONDS) and the function's 180 s
    # (+ ~30 s cold start: the pack's S3 fetch and load; 504 with advice, never Lambda's bare timeout).
    # reserved 4: a new instance's ~30 s cold start is six single crops' answers (~5 s each), so a
    # burst beyond 4 warm instances gets 429 and docfn.client's retry, not another cold start; 4 x 8 GB.
    formula = {
      memory_size          = 8192
      timeout              = 180
      ephemeral_storage    = 8192
      reserved_concurrency = 4
      role_packs           = { vlm = "vlm-mineru25-int8/1" }
      environment          = { DOCFN_VLM_TIMEOUT_SECONDS = "120" }
    }
    chart = {
      memory_size          = 8192
      timeout              = 180
      ephemeral_storage    = 8192
      reserved_concurrency = 4
      role_packs           = { vlm = "vlm-mineru25-int8/1" }
      environment          = { DOCFN_VLM_TIMEOUT_SECONDS = "120" }
    }
    # vlm: the most memory (and vCPUs: 6) Lambda gives; 900 s because its S3-triggered jobs run the
    # two-step page (page encode ~90 s, then the layout answer at ~20 tokens/s) and its many-crop and
    # chat requests have DOCFN_VLM_TIMEOUT_SECONDS (600) as deadline. reserved 10: one instance per
    # page in flight (a page's blocks are one request), as many as parse's default 10 instances send.
    vlm = {
      memory_size          = 10240
      timeout              = 900
      ephemeral_storage    = 10240
      reserved_concurrency = 10
      model_pack           = "vlm-mineru25-int8/1"
    }
    # No pack of its own (extractive, no weights); documents are parsed in-process with parse's packs.
    summarize = {
      memory_size       = 3008
      timeout           = 300
      ephemeral_storage = 4096
      role_packs        = { layout = "layout-cdla/2", ocr = "ocr-ppocrv6-tiny/2", table_structure = "table-slanet-plus/1" }
    }
  }

  validation {
    condition     = length(var.tasks) > 0 && alltrue([for k in keys(var.tasks) : contains(["ocr", "layout", "table", "formula", "chart", "parse", "summarize", "vlm"], k)])
    error_message = "tasks keys must be among ocr, layout, table, formula, chart, parse, summarize, vlm (at least one)."
  }
  validation {
    condition     = alltrue([for t in values(var.tasks) : t.memory_size >= 128 && t.memory_size <= 10240 && floor(t.memory_size) == t.memory_size])
    error_message = "memory_size must be a whole number of MB between 128 and 10240."
  }
  validation {
    condition     = alltrue([for t in values(var.tasks) : t.timeout >= 1 && t.timeout <= 900])
    error_message = "timeout must be between 1 and 900 seconds."
  }
  validation {
    condition     = alltrue([for t in values(var.tasks) : t.ephemeral_storage >= 512 && t.ephemeral_storage <= 10240])
    error_message = "ephemeral_storage must be between 512 and 10240 MB."
  }
  validation {
    condition     = alltrue([for t in values(var.tasks) : t.reserved_concurrency >= 1 && t.reserved_concurrency <= 1000])
    error_message = "reserved_concurrency must be between 1 and 1000 (0 would disable the function)."
  }
  validation {
    condition     = alltrue([for t in values(var.tasks) : contains(["x86_64", "arm64"], t.architecture)])
    error_message = "architecture must be x86_64 or arm64."
  }
  validation {
    condition     = alltrue([for t in values(var.tasks) : t.model_pack == null || can(regex("^[a-z0-9][a-z0-9._-]*/[A-Za-z0-9._-]+$", t.model_pack))])
    error_message = "model_pack must look like \"<name>/<version>\", e.g. \"ocr-ppocrv6-tiny/2\"."
  }
  validation {
    condition     = alltrue(flatten([for t in values(var.tasks) : [for pack in values(t.role_packs) : can(regex("^[a-z0-9][a-z0-9._-]*/[A-Za-z0-9._-]+$", pack))]]))
    error_message = "Every role_packs value must look like \"<name>/<version>\", e.g. \"table-slanet-plus/1\"."
  }
  validation {
    condition     = alltrue(flatten([for k, t in var.tasks : [for role in keys(t.role_packs) : contains(lookup({ table = ["layout", "table_structure", "vlm"], parse = ["ocr", "table_structure", "vlm"], formula = ["vlm"], chart = ["vlm"], summarize = ["layout", "ocr", "table_structure", "vlm"] }, k, []), role)]]))
    error_message = "role_packs may name only roles the task reads: table reads layout, table_structure and vlm, parse reads ocr, table_structure and vlm, formula and chart read vlm, summarize reads layout, ocr and table_structure (parse's, for documents) and vlm (DOCFN_<ROLE>_MODEL_URI); the other tasks read only their model_pack."
  }
  validation {
    condition     = alltrue([for t in values(var.tasks) : t.batch_size >= 1 && t.batch_size <= 10000 && t.maximum_batching_window_in_seconds >= 0 && t.maximum_batching_window_in_seconds <= 300])
    error_message = "batch_size must be 1-10000 and maximum_batching_window_in_seconds 0-300."
  }
  validation {
    condition     = alltrue([for t in values(var.tasks) : t.batch_size <= 10 || t.maximum_batching_window_in_seconds >= 1])
    error_message = "An SQS batch_size above 10 needs maximum_batching_window_in_seconds of at least 1."
  }
  validation {
    condition = alltrue(flatten([for t in values(var.tasks) : [
      for k in keys(t.environment) : !contains([
        "DOCFN_TASKS", "DOCFN_BUCKET", "DOCFN_REDIS_URL", "DOCFN_REDIS_AUTH_SECRET_ARN", "DOCFN_TRACING",
      ], k) && !can(regex("^DOCFN_([A-Z_]+_)?MODEL_URI$", k))
    ]]))
    error_message = "environment may not set DOCFN_TASKS, DOCFN_BUCKET, DOCFN_MODEL_URI, DOCFN_<ROLE>_MODEL_URI, DOCFN_REDIS_URL, DOCFN_REDIS_AUTH_SECRET_ARN or DOCFN_TRACING; the module wires those (set model_pack / role_packs / tracing instead)."
  }
}

################################################################################
# Warmth: what buys a cold start away, and what it costs idle (README, "Paying for warmth")
################################################################################

variable "snap_start_tasks" {
  description = <<-EOT
    Tasks whose function runs with Lambda SnapStart: the module publishes a version on every
    change, Lambda snapshots it after init (DOCFN_EAGER_LOAD has the packs loaded and warmed by
    then) and new containers resume from the snapshot; the function URL, HTTP API and SQS mapping
    call the "live" alias on that version. AWS refuses SnapStart with ephemeral storage above 512
    MB, EFS or provisioned concurrency: such a task must set ephemeral_storage = 512 and cannot be
    in provisioned_concurrency. Costs a snapshot cache charge per GB-second of memory while the
    version exists and a restore charge per GB on each resume (README).
  EOT
  type        = set(string)
  default     = []

  validation {
    condition     = alltrue([for t in var.snap_start_tasks : contains(["ocr", "layout", "table", "formula", "chart", "parse", "summarize", "vlm"], t)])
    error_message = "snap_start_tasks entries must be task names (ocr, layout, table, formula, chart, parse, summarize, vlm)."
  }
}

variable "provisioned_concurrency" {
  description = <<-EOT
    Provisioned concurrency per task (task name -> initialized containers kept ready; default
    none: every task scales to zero). Each listed task gets a published version and a "live" alias
    carrying the provisioned concurrency, and its triggers call that alias. Billed per GB-second
    of the function's memory for as long as it is configured, used or not (README, "Paying for
    warmth"). Not with SnapStart (AWS refuses both on one function).
  EOT
  type        = map(number)
  default     = {}

  validation {
    condition     = alltrue([for t in keys(var.provisioned_concurrency) : contains(["ocr", "layout", "table", "formula", "chart", "parse", "summarize", "vlm"], t)])
    error_message = "provisioned_concurrency keys must be task names (ocr, layout, table, formula, chart, parse, summarize, vlm)."
  }
  validation {
    condition     = alltrue([for n in values(var.provisioned_concurrency) : n >= 1 && n <= 1000 && floor(n) == n])
    error_message = "provisioned_concurrency values must be whole numbers between 1 and 1000 (leave a task out for none)."
  }
}

variable "image_tag" {
  description = "Image tag deployed from each task's ECR repository (<name>-<task>). Push a new tag per release: repositories are immutable by default."
  type        = string
  default     = "0.1.0"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "image_tag must be a valid Docker tag."
  }
}

variable "image_uris" {
  description = "Optional per-task full image URI (registry/repo:tag or @sha256:digest) that overrides <ECR repository URL>:<image_tag>."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for uri in values(var.image_uris) : can(regex("^[0-9]{12}\\.dkr\\.ecr\\.[a-z0-9-]+\\.amazonaws\\.com(\\.cn)?/.+", uri))])
    error_message = "image_uris values must be ECR image URIs (Lambda only runs images from ECR)."
  }
}

variable "ecr_image_tag_mutability" {
  description = "ECR tag mutability. IMMUTABLE (default) means every release pushes a new tag."
  type        = string
  default     = "IMMUTABLE"

  validation {
    condition     = contains(["MUTABLE", "IMMUTABLE"], var.ecr_image_tag_mutability)
    error_message = "ecr_image_tag_mutability must be MUTABLE or IMMUTABLE."
  }
}

variable "ecr_keep_images" {
  description = "How many images each ECR repository keeps; older ones are expired by a lifecycle policy."
  type        = number
  default     = 10

  validation {
    condition     = var.ecr_keep_images >= 1 && var.ecr_keep_images <= 1000
    error_message = "ecr_keep_images must be between 1 and 1000."
  }
}

variable "ecr_force_delete" {
  description = "Delete ECR repositories even when they still hold images (terraform destroy)."
  type        = bool
  default     = false
}

variable "function_url_auth_type" {
  description = "Auth type of every function URL. AWS_IAM (SigV4-signed requests; see the invoke_policy_arn output) unless you explicitly opt into a public NONE URL."
  type        = string
  default     = "AWS_IAM"

  validation {
    condition     = contains(["AWS_IAM", "NONE"], var.function_url_auth_type)
    error_message = "function_url_auth_type must be AWS_IAM or NONE."
  }
}

variable "cors" {
  description = "CORS for the function URLs and the HTTP API. No CORS headers are sent while allow_origins is empty."
  type = object({
    allow_origins     = optional(list(string), [])
    allow_methods     = optional(list(string), ["GET", "POST"])
    allow_headers     = optional(list(string), ["authorization", "content-type", "x-amz-content-sha256", "x-amz-date", "x-amz-security-token", "x-request-id"])
    expose_headers    = optional(list(string), ["retry-after", "x-request-id"])
    allow_credentials = optional(bool, false)
    max_age           = optional(number, 300)
  })
  default = {}

  validation {
    condition     = var.cors.max_age >= 0 && var.cors.max_age <= 86400
    error_message = "cors.max_age must be between 0 and 86400 seconds."
  }
  validation {
    condition     = !(var.cors.allow_credentials && contains(var.cors.allow_origins, "*"))
    error_message = "cors.allow_credentials cannot be combined with a \"*\" origin."
  }
}

variable "tracing" {
  description = <<-EOT
    DOCFN_TRACING of every function: "xray" (the X-Ray SDK; the function's tracing_config is Active,
    so Lambda samples and owns the segment), "otel" (OpenTelemetry spans over OTLP/HTTP to the
    collector at OTEL_EXPORTER_OTLP_ENDPOINT, set through a task's environment; flushed before each
    invocation returns; tracing_config PassThrough) or "off". A tracer that cannot start or send is
    logged once and steps aside: tracing never fails a request.
  EOT
  type        = string
  default     = "xray"

  validation {
    condition     = contains(["xray", "otel", "off"], var.tracing)
    error_message = "tracing must be xray, otel or off."
  }
}

variable "log_level" {
  description = "DOCFN_LOG_LEVEL of every function."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "log_retention_in_days" {
  description = "Retention of the function, API access and VPC flow log groups."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, ..., 365, ..., 3653)."
  }
}

variable "result_ttl_seconds" {
  description = "DOCFN_RESULT_TTL_SECONDS: how long cached results live in the cache."
  type        = number
  default     = 86400

  validation {
    condition     = var.result_ttl_seconds >= 60 && var.result_ttl_seconds <= 2592000
    error_message = "result_ttl_seconds must be between 60 seconds and 30 days."
  }
}

################################################################################
# Bucket and events
################################################################################

variable "bucket_name" {
  description = "Name of the TTL bucket. Null: \"<name>-<account id>-<region>\"."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name."
  }
}

variable "bucket_force_destroy" {
  description = "Let terraform destroy empty the bucket (including model packs)."
  type        = bool
  default     = false
}

variable "bucket_versioning" {
  description = "Keep object versions (noncurrent versions expire after noncurrent_version_expiration_days)."
  type        = bool
  default     = true
}

variable "upload_expiration_days" {
  description = "Days after which inputs under uploads/ are deleted."
  type        = number
  default     = 1

  validation {
    condition     = var.upload_expiration_days >= 1 && var.upload_expiration_days <= 3650
    error_message = "upload_expiration_days must be between 1 and 3650."
  }
}

variable "result_expiration_days" {
  description = "Days after which outputs under results/ are deleted."
  type        = number
  default     = 1

  validation {
    condition     = var.result_expiration_days >= 1 && var.result_expiration_days <= 3650
    error_message = "result_expiration_days must be between 1 and 3650."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days a noncurrent object version (an overwritten model pack file, an expired upload) is kept when versioning is on."
  type        = number
  default     = 7

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1 && var.noncurrent_version_expiration_days <= 3650
    error_message = "noncurrent_version_expiration_days must be between 1 and 3650."
  }
}

variable "access_log_bucket" {
  description = "Existing bucket that receives S3 server access logs of the TTL bucket and of the web bundle bucket (null: no access logs)."
  type        = string
  default     = null
}

variable "s3_events_via_eventbridge" {
  description = "Deliver upload events through EventBridge (one rule per task to its queue) instead of direct S3 -> SQS notifications."
  type        = bool
  default     = false
}

variable "queue_max_receive_count" {
  description = "Deliveries of one upload event before it moves to the task's dead-letter queue."
  type        = number
  default     = 3

  validation {
    condition     = var.queue_max_receive_count >= 1 && var.queue_max_receive_count <= 1000
    error_message = "queue_max_receive_count must be between 1 and 1000."
  }
}

variable "dlq_message_retention_seconds" {
  description = "How long failed events stay in the dead-letter queues."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600
    error_message = "dlq_message_retention_seconds must be between 60 and 1209600."
  }
}

################################################################################
# Encryption
################################################################################

variable "create_kms_key" {
  description = "Create one customer managed KMS key (rotation on) for the bucket, queues, logs, secret, cache, ECR and function environments. Ignored when kms_key_arn is set; false with no kms_key_arn uses AWS managed encryption (SSE-S3, SQS-SSE, ...)."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "Existing KMS key ARN to use instead of creating one. Its policy must let CloudWatch Logs, S3 and EventBridge use it (see kms.tf)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

################################################################################
# Front door: API Gateway HTTP API
################################################################################

variable "create_api_gateway" {
  description = "Create the HTTP API front door (POST /v1/<task> and POST /<task> per task, uploads and jobs routes). Function URLs exist either way."
  type        = bool
  default     = true
}

variable "api_authorization_type" {
  description = "Authorization of every API route: AWS_IAM (SigV4), JWT (api_jwt_issuer/api_jwt_audience) or NONE (explicit opt-in to a public API)."
  type        = string
  default     = "AWS_IAM"

  validation {
    condition     = contains(["AWS_IAM", "JWT", "NONE"], var.api_authorization_type)
    error_message = "api_authorization_type must be AWS_IAM, JWT or NONE."
  }
}

variable "api_jwt_issuer" {
  description = "JWT issuer URL (api_authorization_type = JWT)."
  type        = string
  default     = null
}

variable "api_jwt_audience" {
  description = "Accepted JWT audiences (api_authorization_type = JWT)."
  type        = list(string)
  default     = []
}

variable "api_throttling_rate_limit" {
  description = "Stage-wide steady-state request rate limit (requests per second) of the HTTP API."
  type        = number
  default     = 50

  validation {
    condition     = var.api_throttling_rate_limit > 0
    error_message = "api_throttling_rate_limit must be positive."
  }
}

variable "api_throttling_burst_limit" {
  description = "Stage-wide burst limit (requests) of the HTTP API."
  type        = number
  default     = 100

  validation {
    condition     = var.api_throttling_burst_limit > 0 && floor(var.api_throttling_burst_limit) == var.api_throttling_burst_limit
    error_message = "api_throttling_burst_limit must be a positive whole number."
  }
}

variable "jobs_task" {
  description = "The task function that answers POST /v1/uploads and GET /v1/jobs/{id} (it may presign uploads for every task)."
  type        = string
  default     = "parse"

  validation {
    condition     = contains(["ocr", "layout", "table", "formula", "chart", "parse", "summarize", "vlm"], var.jobs_task)
    error_message = "jobs_task must be one of the task names."
  }
}

variable "domain_name" {
  description = "Custom domain for the HTTP API (e.g. docfn.example.com). Null: use the execute-api endpoint."
  type        = string
  default     = null
}

variable "certificate_arn" {
  description = "Existing regional ACM certificate for domain_name. Null: the module requests one validated through route53_zone_id."
  type        = string
  default     = null
}

variable "route53_zone_id" {
  description = "Public Route 53 zone that holds domain_name: DNS validation and alias records are created in it."
  type        = string
  default     = null
}

################################################################################
# Cache
################################################################################

variable "cache_serverless" {
  description = "Use ElastiCache Serverless (pay per GB-hour and ECPU; the cheapest idle option with Valkey) instead of a node-based replication group."
  type        = bool
  default     = false
}

variable "cache_engine" {
  description = "Cache engine: valkey or redis (Redis OSS)."
  type        = string
  default     = "valkey"

  validation {
    condition     = contains(["valkey", "redis"], var.cache_engine)
    error_message = "cache_engine must be valkey or redis."
  }
}

variable "cache_engine_version" {
  description = "Engine version of the replication group (null: 8.0 for valkey, 7.1 for redis). Serverless caches use the major version only."
  type        = string
  default     = null
}

variable "cache_node_type" {
  description = "Node type of the replication group."
  type        = string
  default     = "cache.t4g.micro"

  validation {
    condition     = can(regex("^cache\\.", var.cache_node_type))
    error_message = "cache_node_type must be an ElastiCache node type such as cache.t4g.micro."
  }
}

variable "cache_num_cache_clusters" {
  description = "Nodes in the replication group (primary + replicas). At least 2: automatic failover and Multi-AZ need a replica."
  type        = number
  default     = 2

  validation {
    condition     = var.cache_num_cache_clusters >= 2 && var.cache_num_cache_clusters <= 6
    error_message = "cache_num_cache_clusters must be between 2 and 6."
  }
}

variable "cache_snapshot_retention_limit" {
  description = "Days of automatic cache snapshots (0 turns them off; the cache only holds re-computable results)."
  type        = number
  default     = 1

  validation {
    condition     = var.cache_snapshot_retention_limit >= 0 && var.cache_snapshot_retention_limit <= 35
    error_message = "cache_snapshot_retention_limit must be between 0 and 35."
  }
}

variable "cache_serverless_max_storage_gb" {
  description = "Data storage cap of the serverless cache, in GB."
  type        = number
  default     = 1

  validation {
    condition     = var.cache_serverless_max_storage_gb >= 1 && var.cache_serverless_max_storage_gb <= 5000
    error_message = "cache_serverless_max_storage_gb must be between 1 and 5000."
  }
}

variable "cache_serverless_max_ecpu_per_second" {
  description = "ECPU per second cap of the serverless cache."
  type        = number
  default     = 5000

  validation {
    condition     = var.cache_serverless_max_ecpu_per_second >= 1000 && var.cache_serverless_max_ecpu_per_second <= 15000000
    error_message = "cache_serverless_max_ecpu_per_second must be between 1000 and 15000000."
  }
}

variable "cache_apply_immediately" {
  description = "Apply cache modifications immediately instead of in the maintenance window."
  type        = bool
  default     = false
}

variable "secret_recovery_window_in_days" {
  description = "Recovery window of the cache auth token secret after deletion (0 deletes at once)."
  type        = number
  default     = 7

  validation {
    condition     = var.secret_recovery_window_in_days == 0 || (var.secret_recovery_window_in_days >= 7 && var.secret_recovery_window_in_days <= 30)
    error_message = "secret_recovery_window_in_days must be 0 or between 7 and 30."
  }
}

################################################################################
# Network
################################################################################

variable "create_vpc" {
  description = "Create a VPC with private subnets (no NAT gateway) for the functions and the cache. False: pass vpc_id and private_subnet_ids."
  type        = bool
  default     = true
}

variable "vpc_cidr" {
  description = "CIDR block of the created VPC."
  type        = string
  default     = "10.42.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && tonumber(split("/", var.vpc_cidr)[1]) <= 20
    error_message = "vpc_cidr must be an IPv4 CIDR block of /20 or larger."
  }
}

variable "az_count" {
  description = "Availability zones (one private subnet each) of the created VPC."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 4
    error_message = "az_count must be between 2 and 4."
  }
}

variable "availability_zones" {
  description = "Names of the availability zones of the created VPC's private subnets, in order (the first az_count are used). Empty: the first az_count of the region's zones a-f."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for az in var.availability_zones : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9][a-z]$", az))]) && length(distinct(var.availability_zones)) == length(var.availability_zones)
    error_message = "availability_zones must be distinct zone names such as eu-west-1a."
  }
  validation {
    condition     = length(var.availability_zones) == 0 || length(var.availability_zones) >= 2
    error_message = "availability_zones needs at least two zones (or none, to use the region's first az_count)."
  }
}

variable "vpc_id" {
  description = "Existing VPC (create_vpc = false)."
  type        = string
  default     = null

  validation {
    condition     = var.vpc_id == null || can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "private_subnet_ids" {
  description = "Existing private subnets in at least two AZs (create_vpc = false)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.private_subnet_ids : can(regex("^subnet-[0-9a-f]+$", s))])
    error_message = "private_subnet_ids must be subnet IDs."
  }
}

variable "private_route_table_ids" {
  description = "Route tables of the existing private subnets; the S3 gateway endpoint is attached to them (create_vpc = false)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.private_route_table_ids : can(regex("^rtb-[0-9a-f]+$", r))])
    error_message = "private_route_table_ids must be route table IDs."
  }
}

variable "create_s3_gateway_endpoint" {
  description = "Create the (free) S3 gateway endpoint so model fetches, uploads and results need no NAT. Turn off if the VPC already has one."
  type        = bool
  default     = true
}

variable "create_interface_endpoints" {
  description = "Create interface VPC endpoints for interface_endpoint_services. Needed when the private subnets have no NAT (the created VPC has none): the functions read the cache auth token from Secrets Manager at cold start."
  type        = bool
  default     = true
}

variable "interface_endpoint_services" {
  description = "AWS services that get an interface endpoint (each costs about 7.30 USD per AZ per month). secretsmanager is required without NAT; add sqs if your code calls SQS itself (the SQS event source mapping polls from the Lambda service, outside the VPC)."
  type        = list(string)
  default     = ["secretsmanager", "xray"]

  validation {
    condition     = alltrue([for s in var.interface_endpoint_services : contains(["secretsmanager", "xray", "sqs", "kms", "sts", "logs"], s)])
    error_message = "interface_endpoint_services entries must be among secretsmanager, xray, sqs, kms, sts, logs."
  }
}

variable "function_egress_cidr_blocks" {
  description = "Extra IPv4 CIDRs the functions may reach on 443 (e.g. [\"0.0.0.0/0\"] behind a NAT for an OpenAI-compatible summariser endpoint)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.function_egress_cidr_blocks : can(cidrnetmask(c))])
    error_message = "function_egress_cidr_blocks must be IPv4 CIDR blocks."
  }
}

variable "enable_flow_log" {
  description = "VPC flow log (rejected and accepted traffic) to CloudWatch Logs for the created VPC."
  type        = bool
  default     = true
}

################################################################################
# Alarms
################################################################################

variable "alarm_sns_topic_arn" {
  description = "SNS topic notified by the alarms (null: alarms without actions)."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_sns_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:", var.alarm_sns_topic_arn))
    error_message = "alarm_sns_topic_arn must be an SNS topic ARN."
  }
}

variable "alarm_errors_threshold" {
  description = "Function errors in 5 minutes that raise the errors alarm."
  type        = number
  default     = 1

  validation {
    condition     = var.alarm_errors_threshold >= 1
    error_message = "alarm_errors_threshold must be at least 1."
  }
}

variable "alarm_throttles_threshold" {
  description = "Throttled invocations in 5 minutes that raise the throttles alarm."
  type        = number
  default     = 1

  validation {
    condition     = var.alarm_throttles_threshold >= 1
    error_message = "alarm_throttles_threshold must be at least 1."
  }
}

variable "alarm_duration_p99_ratio" {
  description = "The p99 duration alarm fires above this fraction of the function timeout."
  type        = number
  default     = 0.8

  validation {
    condition     = var.alarm_duration_p99_ratio > 0 && var.alarm_duration_p99_ratio <= 1
    error_message = "alarm_duration_p99_ratio must be in (0, 1]."
  }
}

variable "log_subscription_destination_arn" {
  description = "Optional log shipping to Elasticsearch/OpenSearch: the ARN a CloudWatch Logs subscription sends every function's request log lines to (request_id, input_sha256, task, duration_ms, status, ...) - a Kinesis Data Firehose delivery stream with an OpenSearch destination, a Kinesis stream, a Lambda function or a CloudWatch Logs destination. null (the default) ships nothing."
  type        = string
  default     = null

  validation {
    condition     = var.log_subscription_destination_arn == null || can(regex("^arn:aws[a-z-]*:(firehose|kinesis|lambda|logs):[a-z0-9-]+:[0-9]{12}:.+$", var.log_subscription_destination_arn))
    error_message = "log_subscription_destination_arn must be the ARN of a Firehose delivery stream, Kinesis stream, Lambda function or CloudWatch Logs destination, or null."
  }
}

variable "log_subscription_role_arn" {
  description = "IAM role CloudWatch Logs assumes to put records into a Firehose or Kinesis log_subscription_destination_arn (not needed for a Lambda function or a Logs destination). null by default."
  type        = string
  default     = null

  validation {
    condition     = var.log_subscription_role_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.log_subscription_role_arn))
    error_message = "log_subscription_role_arn must be an IAM role ARN, or null."
  }
}

################################################################################
# Optional: the static web bundle (web.tf, modules/web_bundle)
################################################################################

variable "web_bundle" {
  description = <<-EOT
    The in-browser OCR page as a static site: the folder `docfn export-web DIR` wrote, uploaded to a
    private S3 bucket behind CloudFront (origin access control, HTTPS only, cross-origin isolation
    headers). Off by default (enabled = false creates nothing). source_dir: that folder (needed when
    enabled); bucket_name: null for a unique "<name>-web-..." name; max_age_seconds: Cache-Control
    max-age of every file but index.html (no-cache); content_types: extra Content-Type per file
    extension; price_class, aliases + acm_certificate_arn (us-east-1) and web_acl_id: the
    distribution's.
  EOT
  type = object({
    enabled             = optional(bool, false)
    source_dir          = optional(string)
    bucket_name         = optional(string)
    max_age_seconds     = optional(number, 300)
    content_types       = optional(map(string), {})
    price_class         = optional(string, "PriceClass_100")
    aliases             = optional(list(string), [])
    acm_certificate_arn = optional(string)
    web_acl_id          = optional(string)
  })
  default  = {}
  nullable = false

  validation {
    condition     = !var.web_bundle.enabled || var.web_bundle.source_dir != null
    error_message = "web_bundle.source_dir is required when web_bundle.enabled is true: the folder `docfn export-web DIR` wrote."
  }
}
