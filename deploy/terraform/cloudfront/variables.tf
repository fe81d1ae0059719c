variable "name" {
  description = "Name prefix for the distribution's resources (e.g. \"platform-prod\")."
  type        = string
}

variable "assets_bucket_name" {
  description = "Existing S3 bucket holding deployment objects (S3_BUCKET of the platform)."
  type        = string
}

variable "origin_domain_name" {
  description = "Public DNS name of the platform origin (Django/gunicorn behind its load balancer); HTTPS only."
  type        = string
}

variable "aliases" {
  description = "Hostnames the distribution answers to (tenant websites and the platform's own name)."
  type        = list(string)
  default     = []
}

variable "acm_certificate_arn" {
  description = "ACM certificate (in us-east-1) covering the aliases; null uses the *.cloudfront.net certificate."
  type        = string
  default     = null
}

variable "price_class" {
  description = "CloudFront price class."
  type        = string
  default     = "PriceClass_100"
}

variable "html_default_ttl" {
  description = "Edge TTL when the origin sends no Cache-Control (the strategy's HTML hour)."
  type        = number
  default     = 3600
}

variable "origin_read_timeout" {
  description = "Seconds CloudFront waits for the origin."
  type        = number
  default     = 30
}

variable "web_acl_id" {
  description = "Optional WAFv2 web ACL ARN."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
