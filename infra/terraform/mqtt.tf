# The MQTT endpoint: AWS IoT Core (managed, clustered, MQTT 5 with shared subscriptions). Each
# scanner is a thing with its own certificate (from provisioning/); the policy lets a device use
# only its own subtree rm/v1/dev/<thing name>/..., in the protocol's directions. The ingest
# workers and the API connect with the "receipts-server" policy.
data "aws_iot_endpoint" "ats" {
  endpoint_type = "iot:Data-ATS"
}

data "aws_region" "current" {}

locals {
  iot_prefix = "arn:aws:iot:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}"
  device_root = "rm/v1/dev/$${iot:Connection.Thing.ThingName}"
}

resource "aws_iot_policy" "device" {
  name = "${local.name}-device"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect    = "Allow"
        Action    = ["iot:Connect"]
        Resource  = ["${local.iot_prefix}:client/$${iot:Connection.Thing.ThingName}"]
        Condition = { Bool = { "iot:Connection.Thing.IsAttached" = "true" } }
      },
      {
        Effect = "Allow"
        Action = ["iot:Publish"]
        Resource = [for t in ["receipt", "image/*", "status", "telemetry", "config/reported", "cmd/*/result"] :
        "${local.iot_prefix}:topic/${local.device_root}/${t}"]
      },
      {
        Effect   = "Allow"
        Action   = ["iot:Subscribe"]
        Resource = [for t in ["config/desired", "cmd/*"] : "${local.iot_prefix}:topicfilter/${local.device_root}/${t}"]
      },
      {
        Effect   = "Allow"
        Action   = ["iot:Receive"]
        Resource = [for t in ["config/desired", "cmd/*"] : "${local.iot_prefix}:topic/${local.device_root}/${t}"]
      },
    ]
  })
}

resource "aws_iot_policy" "server" {
  name = "${local.name}-server"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["iot:Connect"]
        Resource = ["${local.iot_prefix}:client/rm-ingest-*", "${local.iot_prefix}:client/rm-server-*"]
      },
      {
        Effect   = "Allow"
        Action   = ["iot:Subscribe"]
        Resource = ["${local.iot_prefix}:topicfilter/$share/ingest/rm/v1/dev/*", "${local.iot_prefix}:topicfilter/rm/v1/dev/*"]
      },
      {
        Effect   = "Allow"
        Action   = ["iot:Receive"]
        Resource = ["${local.iot_prefix}:topic/rm/v1/dev/*"]
      },
      {
        Effect   = "Allow"
        Action   = ["iot:Publish"]
        Resource = ["${local.iot_prefix}:topic/rm/v1/dev/*/config/desired", "${local.iot_prefix}:topic/rm/v1/dev/*/cmd/*"]
      },
    ]
  })
}

resource "aws_iot_thing_type" "scanner" {
  name = "${local.name}-scanner"
}

# Device connects and disconnects are logged, so an outage shows up in CloudWatch too.
resource "aws_iot_logging_options" "main" {
  default_log_level = "WARN"
  role_arn          = aws_iam_role.iot_logging.arn
}

data "aws_iam_policy_document" "iot_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["iot.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "iot_logging" {
  name               = "${local.name}-iot-logging"
  assume_role_policy = data.aws_iam_policy_document.iot_assume.json
}

resource "aws_iam_role_policy_attachment" "iot_logging" {
  role       = aws_iam_role.iot_logging.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSIoTLogging"
}
