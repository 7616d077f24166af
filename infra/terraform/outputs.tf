output "api_url" {
  description = "Where the API answers (point DNS here)."
  value       = "https://${aws_lb.api.dns_name}"
}

output "mqtt_endpoint" {
  description = "The scanners' broker (AWS IoT Core, port 8883)."
  value       = data.aws_iot_endpoint.ats.endpoint_address
}

output "database_endpoint" {
  value = aws_rds_cluster.main.endpoint
}

output "images_bucket" {
  value = aws_s3_bucket.images.bucket
}

output "backups_bucket" {
  value = aws_s3_bucket.backups.bucket
}
