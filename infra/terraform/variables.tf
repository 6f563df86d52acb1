variable "project_id" {
  description = "Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Run service and the Filestore instance (same region: NFS latency)."
  type        = string
  default     = "europe-west1"
}

variable "zone" {
  description = "Zone of the Filestore instance (BASIC tiers are zonal)."
  type        = string
  default     = "europe-west1-b"
}

variable "name" {
  description = "Name prefix of every resource."
  type        = string
  default     = "driftscope"
}

variable "image" {
  description = "Container image built from infra/Dockerfile, e.g. europe-west1-docker.pkg.dev/PROJECT/driftscope/driftscope:0.1.0."
  type        = string
}

variable "network" {
  description = "VPC network the Filestore instance is reachable on (Cloud Run reaches it with direct VPC egress)."
  type        = string
  default     = "default"
}

variable "subnetwork" {
  description = "Subnetwork in var.region that Cloud Run's direct VPC egress uses."
  type        = string
  default     = "default"
}

variable "filestore_tier" {
  description = "Filestore tier: BASIC_HDD (cheapest, 1 TiB minimum) or BASIC_SSD (2.5 TiB minimum, faster compaction)."
  type        = string
  default     = "BASIC_HDD"
  validation {
    condition     = contains(["BASIC_HDD", "BASIC_SSD", "ZONAL"], var.filestore_tier)
    error_message = "filestore_tier must be BASIC_HDD, BASIC_SSD or ZONAL."
  }
}

variable "filestore_capacity_gb" {
  description = "Filestore capacity in GiB (the tier's minimum at least)."
  type        = number
  default     = 1024
}

variable "cpu" {
  description = "vCPUs of the single instance (DuckDB and the detectors use them all)."
  type        = string
  default     = "2"
}

variable "memory" {
  description = "Memory of the single instance (DuckDB's memory_limit follows it)."
  type        = string
  default     = "4Gi"
}

variable "invokers" {
  description = "IAM members allowed to call the service (e.g. serviceAccount:collector@PROJECT.iam.gserviceaccount.com)."
  type        = list(string)
  default     = []
}
