# driftscope on Cloud Run: one always-on instance (the scheduler runs inside the process and
# DuckDB allows one writer), the store on a Filestore NFS share, the API token in Secret
# Manager, and a service account that can read that one secret and nothing else.
# See infra/README.md ("Cloud Run") for why NFS and not Cloud Storage FUSE.

locals {
  store_mount = "/data"
}

resource "google_project_service" "apis" {
  for_each           = toset(["run.googleapis.com", "secretmanager.googleapis.com", "file.googleapis.com"])
  service            = each.value
  disable_on_destroy = false
}

# Least privilege: no project-level roles at all. Cloud Run writes stdout/stderr to Cloud
# Logging without any role on the runtime account; the only grant is read access to the
# API token secret below.
resource "google_service_account" "driftscope" {
  account_id   = "${var.name}-run"
  display_name = "driftscope Cloud Run runtime"
}

# The secret holds the bearer token for /api/* (auth.api_token). Its value is added out of
# band (gcloud secrets versions add), so it never lands in Terraform state.
resource "google_secret_manager_secret" "api_token" {
  secret_id = "${var.name}-api-token"
  replication {
    auto {}
  }
  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_iam_member" "runtime_reads_token" {
  secret_id = google_secret_manager_secret.api_token.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.driftscope.email}"
}

resource "google_filestore_instance" "store" {
  name     = "${var.name}-store"
  location = var.zone
  tier     = var.filestore_tier

  file_shares {
    name        = "store"
    capacity_gb = var.filestore_capacity_gb
  }

  networks {
    network = var.network
    modes   = ["MODE_IPV4"]
  }

  depends_on = [google_project_service.apis]
}

resource "google_cloud_run_v2_service" "driftscope" {
  name                = var.name
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = true

  template {
    service_account = google_service_account.driftscope.email
    # NFS volumes need the second-generation execution environment.
    execution_environment = "EXECUTION_ENVIRONMENT_GEN2"
    timeout               = "300s"

    # Exactly one instance: DuckDB takes a file lock and allows one writer process; a second
    # instance (or an overlapping revision) would fail to open the store.
    scaling {
      min_instance_count = 1
      max_instance_count = 1
    }

    vpc_access {
      egress = "PRIVATE_RANGES_ONLY"
      network_interfaces {
        network    = var.network
        subnetwork = var.subnetwork
      }
    }

    containers {
      image = var.image
      args = [
        "serve",
        "--store", "${local.store_mount}/driftscope.duckdb",
        "--http", "0.0.0.0:8080",
        "--otlp-http", "127.0.0.1:4318", # OTLP/HTTP is served on the API port too (/v1/*)
        "--otlp-grpc", "0.0.0.0:4317",
      ]

      ports {
        container_port = 8080 # API, UI, /metrics and OTLP/HTTP (/v1/traces, /v1/metrics, /v1/logs)
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        # The scheduler works between requests: keep the CPU allocated.
        cpu_idle          = false
        startup_cpu_boost = true
      }

      env {
        name  = "DRIFTSCOPE_REPORTS__OUT_DIR"
        value = "${local.store_mount}/reports"
      }

      env {
        name = "DRIFTSCOPE_AUTH__API_TOKEN"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.api_token.secret_id
            version = "latest"
          }
        }
      }

      volume_mounts {
        name       = "store"
        mount_path = local.store_mount
      }

      startup_probe {
        http_get {
          path = "/healthz"
          port = 8080
        }
        initial_delay_seconds = 5
        period_seconds        = 5
        failure_threshold     = 24
      }

      liveness_probe {
        http_get {
          path = "/healthz"
          port = 8080
        }
        period_seconds    = 15
        failure_threshold = 4
      }
    }

    volumes {
      name = "store"
      nfs {
        server    = google_filestore_instance.store.networks[0].ip_addresses[0]
        path      = "/${google_filestore_instance.store.file_shares[0].name}"
        read_only = false
      }
    }
  }

  depends_on = [google_secret_manager_secret_iam_member.runtime_reads_token]
}

resource "google_cloud_run_v2_service_iam_member" "invokers" {
  for_each = toset(var.invokers)
  name     = google_cloud_run_v2_service.driftscope.name
  location = var.region
  role     = "roles/run.invoker"
  member   = each.value
}
