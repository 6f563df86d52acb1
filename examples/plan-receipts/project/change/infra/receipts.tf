resource "google_storage_bucket" "receipts" {
  name                        = "${var.project_id}-receipts"
  location                    = "EU"
  project                     = var.project_id
  uniform_bucket_level_access = true

  lifecycle_rule {
    condition {
      age = 3650
    }
    action {
      type = "Delete"
    }
  }
}
