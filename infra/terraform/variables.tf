variable "region" {
  type        = string
  description = "AWS region."
  default     = "eu-central-1"
}

variable "environment" {
  type        = string
  description = "production or staging."
  validation {
    condition     = contains(["production", "staging"], var.environment)
    error_message = "environment must be production or staging."
  }
}

variable "vpc_cidr" {
  type        = string
  description = "Address range of the VPC."
  default     = "10.40.0.0/16"
}

variable "server_image" {
  type        = string
  description = "ECR image of infra/docker/server.Dockerfile, pinned by digest."
}

variable "api_desired_count" {
  type        = number
  description = "API tasks (at least 2, in two zones, for 99.9 %)."
  default     = 2
  validation {
    condition     = var.api_desired_count >= 2
    error_message = "run at least 2 API tasks."
  }
}

variable "ingest_workers" {
  type        = number
  description = "Ingest workers, each its own ECS service and MQTT client id; they share the subscription."
  default     = 2
}

variable "certificate_arn" {
  type        = string
  description = "ACM certificate of the API's host name, for the HTTPS listener."
}

variable "db_min_capacity" {
  type        = number
  description = "Aurora Serverless v2 minimum ACUs."
  default     = 0.5
}

variable "db_max_capacity" {
  type        = number
  description = "Aurora Serverless v2 maximum ACUs."
  default     = 8
}
