variable "project_id" {
  type        = string
  description = "GCP project of the platform"
}

resource "google_cloud_run_v2_service" "domain_gate" {
  name     = "domain-gate"
  location = "europe-west1"
  project  = var.project_id

  template {
    containers {
      image = "europe-docker.pkg.dev/${var.project_id}/platform/domain-gate:3.4.0"
    }
  }
}
