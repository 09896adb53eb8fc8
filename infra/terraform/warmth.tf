################################################################################
# Warmth options (variables snap_start_tasks, provisioned_concurrency): which tasks get a published
# version and a "live" alias, and the combinations AWS refuses, refused here at plan time instead
# of half-way through an apply. Only variables in here, so the tests evaluate it offline
# (docfn_testkit/terraform_env.py); the alias and its provisioned concurrency are in alias.tf.
################################################################################

locals {
  # Tasks that run from a published version behind the "live" alias. Every other task keeps
  # calling $LATEST, as before, and scales to zero for free.
  aliased_tasks = setunion(var.snap_start_tasks, keys(var.provisioned_concurrency))
  live_alias    = "live"
}

resource "terraform_data" "warmth_checks" {
  input = local.aliased_tasks

  lifecycle {
    precondition {
      condition     = length(setsubtract(local.aliased_tasks, keys(var.tasks))) == 0
      error_message = "snap_start_tasks and provisioned_concurrency may name only deployed tasks (keys of var.tasks)."
    }
    precondition {
      condition     = length(setintersection(var.snap_start_tasks, keys(var.provisioned_concurrency))) == 0
      error_message = "A task cannot have both SnapStart and provisioned concurrency: AWS refuses the combination."
    }
    precondition {
      # SnapStart snapshots /tmp along with memory; AWS caps it at the 512 MB default.
      condition     = alltrue([for t in var.snap_start_tasks : try(var.tasks[t].ephemeral_storage, 512) <= 512])
      error_message = "SnapStart needs ephemeral_storage = 512 (AWS refuses SnapStart with more): set it in the task's entry of var.tasks."
    }
    precondition {
      # Provisioned instances count against the function's reserved concurrency: more could never start.
      condition     = alltrue([for t, n in var.provisioned_concurrency : n <= try(var.tasks[t].reserved_concurrency, n)])
      error_message = "provisioned_concurrency of a task cannot exceed its reserved_concurrency."
    }
  }
}
