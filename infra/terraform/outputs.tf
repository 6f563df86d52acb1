output "url" {
  description = "HTTPS URL of the service (port 8080: API, UI, /metrics and OTLP/HTTP under /v1/)."
  value       = google_cloud_run_v2_service.driftscope.uri
}

output "service_account" {
  description = "Runtime service account of the service."
  value       = google_service_account.driftscope.email
}

output "api_token_secret" {
  description = "Secret Manager secret to add the API token to (gcloud secrets versions add)."
  value       = google_secret_manager_secret.api_token.id
}

output "filestore_ip" {
  description = "NFS server address of the store share (for backups from a VM in the VPC)."
  value       = google_filestore_instance.store.networks[0].ip_addresses[0]
}
