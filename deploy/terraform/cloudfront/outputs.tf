output "distribution_id" {
  description = "Set as the website's cdn_config.distribution_id or CDN_BACKENDS OPTIONS.DISTRIBUTION_ID."
  value       = aws_cloudfront_distribution.this.id
}

output "distribution_arn" {
  description = "ARN (for IAM policies allowing cloudfront:CreateInvalidation/GetInvalidation)."
  value       = aws_cloudfront_distribution.this.arn
}

output "domain_name" {
  description = "The distribution's *.cloudfront.net name; point the aliases' DNS here."
  value       = aws_cloudfront_distribution.this.domain_name
}

output "hosted_zone_id" {
  description = "Route 53 zone id for alias records to the distribution."
  value       = aws_cloudfront_distribution.this.hosted_zone_id
}

output "origin_access_control_id" {
  description = "The Origin Access Control CloudFront uses to sign S3 requests."
  value       = aws_cloudfront_origin_access_control.assets.id
}
