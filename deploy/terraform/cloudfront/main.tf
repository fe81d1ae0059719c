# CloudFront in front of the platform, following the cache strategy in cdn/policy.py:
#   versioned assets  public, max-age=31536000, immutable   (S3 origin, Origin Access Control)
#   HTML              public, max-age=3600 + ETag           (platform origin; CloudFront revalidates)
#   media             public, max-age=2592000               (platform origin's header, honoured)
#   API               no-store                              (never cached, every viewer header forwarded)
# Every behaviour redirects HTTP to HTTPS; the platform origin is reached over HTTPS only.

data "aws_s3_bucket" "assets" {
  bucket = var.assets_bucket_name
}

locals {
  s3_origin_id       = "assets-s3"
  platform_origin_id = "platform"
  # AWS managed policies (stable, documented ids).
  managed_caching_disabled   = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
  managed_all_viewer_request = "216adef6-5c7f-47e4-b989-5492eafa07d3"
  managed_cors_s3_origin     = "88a5eaf4-2fd4-4709-b370-b4c650ea3fcf"
  managed_security_headers   = "67f7725c-6f97-4210-82d7-5512b31e9d03"
}

resource "aws_cloudfront_origin_access_control" "assets" {
  name                              = "${var.name}-assets"
  description                       = "CloudFront signs its S3 requests; the bucket stays private."
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

# Immutable, content-versioned objects: a year at the edge, no cookies/query strings in the key.
resource "aws_cloudfront_cache_policy" "immutable" {
  name        = "${var.name}-immutable"
  comment     = "versioned assets: public, max-age=31536000, immutable"
  min_ttl     = 31536000
  default_ttl = 31536000
  max_ttl     = 31536000
  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_brotli = true
    enable_accept_encoding_gzip   = true
    cookies_config { cookie_behavior = "none" }
    headers_config { header_behavior = "none" }
    query_strings_config { query_string_behavior = "none" }
  }
}

# Tenant websites served by the platform origin: the origin's Cache-Control decides (HTML s-maxage 1 h,
# media 30 d, versioned 1 y), so max_ttl must allow a year; Host is in the key because one origin
# serves every website by its hostname. No query string in the key: a site's files do not vary by it,
# so one invalidation of a path purges every ?query variant the platform could not list.
resource "aws_cloudfront_cache_policy" "sites" {
  name        = "${var.name}-sites"
  comment     = "websites: origin Cache-Control honoured (HTML 3600 s with ETag revalidation)"
  min_ttl     = 0
  default_ttl = var.html_default_ttl
  max_ttl     = 31536000
  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_brotli = true
    enable_accept_encoding_gzip   = true
    cookies_config { cookie_behavior = "none" }
    headers_config {
      header_behavior = "whitelist"
      headers { items = ["Host"] }
    }
    query_strings_config { query_string_behavior = "none" }
  }
}

resource "aws_cloudfront_distribution" "this" {
  enabled         = true
  is_ipv6_enabled = true
  comment         = "${var.name}: tenant websites, deploy assets and the API"
  aliases         = var.aliases
  price_class     = var.price_class
  http_version    = "http2and3"
  web_acl_id      = var.web_acl_id
  tags            = var.tags

  origin {
    origin_id                = local.s3_origin_id
    domain_name              = data.aws_s3_bucket.assets.bucket_regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.assets.id
  }

  origin {
    origin_id   = local.platform_origin_id
    domain_name = var.origin_domain_name
    custom_origin_config {
      http_port                = 80
      https_port               = 443
      origin_protocol_policy   = "https-only"
      origin_ssl_protocols     = ["TLSv1.2"]
      origin_read_timeout      = var.origin_read_timeout
      origin_keepalive_timeout = 60
    }
  }

  # The API and the operator console, in this order: never cached, every viewer header (Authorization,
  # API keys, the session cookie) forwarded. One block, so the two can never drift apart.
  dynamic "ordered_cache_behavior" {
    for_each = ["/api/*", "/admin/*"]
    content {
      path_pattern             = ordered_cache_behavior.value
      target_origin_id         = local.platform_origin_id
      viewer_protocol_policy   = "redirect-to-https"
      allowed_methods          = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
      cached_methods           = ["GET", "HEAD"]
      cache_policy_id          = local.managed_caching_disabled
      origin_request_policy_id = local.managed_all_viewer_request
      compress                 = true
    }
  }

  # Deployment objects by their immutable key (sites/<website>/deployments/<n>-<id>/<path>).
  ordered_cache_behavior {
    path_pattern               = "/sites/*/deployments/*"
    target_origin_id           = local.s3_origin_id
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD", "OPTIONS"]
    cached_methods             = ["GET", "HEAD"]
    cache_policy_id            = aws_cloudfront_cache_policy.immutable.id
    origin_request_policy_id   = local.managed_cors_s3_origin
    response_headers_policy_id = local.managed_security_headers
    compress                   = true
  }

  # Django's own static files (ManifestStaticFilesStorage names carry their hash).
  ordered_cache_behavior {
    path_pattern               = "/static/*"
    target_origin_id           = local.platform_origin_id
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    cache_policy_id            = aws_cloudfront_cache_policy.immutable.id
    response_headers_policy_id = local.managed_security_headers
    compress                   = true
  }

  # Everything else: tenant websites by Host, from the platform origin.
  default_cache_behavior {
    target_origin_id           = local.platform_origin_id
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD", "OPTIONS"]
    cached_methods             = ["GET", "HEAD"]
    cache_policy_id            = aws_cloudfront_cache_policy.sites.id
    response_headers_policy_id = local.managed_security_headers
    compress                   = true
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = var.acm_certificate_arn == null
    acm_certificate_arn            = var.acm_certificate_arn
    ssl_support_method             = var.acm_certificate_arn == null ? null : "sni-only"
    minimum_protocol_version       = var.acm_certificate_arn == null ? "TLSv1" : "TLSv1.2_2021"
  }
}

# Only this distribution may read the bucket (Origin Access Control, no public access).
data "aws_iam_policy_document" "assets_read" {
  statement {
    sid       = "CloudFrontReadsDeployments"
    actions   = ["s3:GetObject"]
    resources = ["${data.aws_s3_bucket.assets.arn}/sites/*"]
    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [aws_cloudfront_distribution.this.arn]
    }
  }
}

resource "aws_s3_bucket_policy" "assets" {
  bucket = data.aws_s3_bucket.assets.id
  policy = data.aws_iam_policy_document.assets_read.json
}
