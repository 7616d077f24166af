# Receipt Manager on AWS: VPC, Aurora PostgreSQL, ECS Fargate (API and ingest) behind an ALB,
# S3 for images and backups (encrypted, 7-year retention), AWS IoT Core as the MQTT endpoint.
# Terraform is not available on the development machines: tests/infra parses these files with
# python-hcl2 and checks the properties that matter (encryption, no public buckets, retention,
# deletion protection). `terraform init && terraform plan` where it is available.
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.50"
    }
  }
  backend "s3" {}
}

provider "aws" {
  region = var.region
  default_tags {
    tags = {
      Project     = "receipt-manager"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}

data "aws_availability_zones" "available" {
  state = "available"
}

data "aws_caller_identity" "current" {}

locals {
  name = "receipts-${var.environment}"
  azs  = slice(data.aws_availability_zones.available.names, 0, 2)
  # 7 years, counted generously (leap days): receipts are tax records.
  retention_days = 2557
}
