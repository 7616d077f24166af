# Aurora PostgreSQL (Serverless v2): encrypted, in private subnets, deletion-protected, with
# 35 days of point-in-time recovery; a reader in the second zone takes failover and dashboards.
resource "aws_kms_key" "data" {
  description             = "${local.name} data at rest (database, buckets, logs)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
}

resource "aws_db_subnet_group" "main" {
  name       = local.name
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_rds_cluster" "main" {
  cluster_identifier              = local.name
  engine                          = "aurora-postgresql"
  engine_version                  = "15.6"
  engine_mode                     = "provisioned"
  database_name                   = "receipts"
  master_username                 = "receipts_admin"
  manage_master_user_password     = true
  db_subnet_group_name            = aws_db_subnet_group.main.name
  vpc_security_group_ids          = [aws_security_group.db.id]
  storage_encrypted               = true
  kms_key_id                      = aws_kms_key.data.arn
  deletion_protection             = true
  skip_final_snapshot             = false
  final_snapshot_identifier       = "${local.name}-final"
  backup_retention_period         = 35
  preferred_backup_window         = "02:00-03:00"
  copy_tags_to_snapshot           = true
  iam_database_authentication_enabled = true
  enabled_cloudwatch_logs_exports = ["postgresql"]
  serverlessv2_scaling_configuration {
    min_capacity = var.db_min_capacity
    max_capacity = var.db_max_capacity
  }
}

resource "aws_rds_cluster_instance" "main" {
  count                        = 2
  identifier                   = "${local.name}-${count.index}"
  cluster_identifier           = aws_rds_cluster.main.id
  instance_class               = "db.serverless"
  engine                       = aws_rds_cluster.main.engine
  engine_version               = aws_rds_cluster.main.engine_version
  publicly_accessible          = false
  performance_insights_enabled = true
  performance_insights_kms_key_id = aws_kms_key.data.arn
}
