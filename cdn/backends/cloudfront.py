"""Amazon CloudFront: create_invalidation per request, tracked until Completed.

Limits (AWS docs, "Concurrent invalidation request maximum"): up to 3,000 file paths and, separately,
15 wildcard paths in progress per distribution. The service layer keeps our own requests within those
budgets (max_*_in_progress); TooManyInvalidationsInProgress (someone else's, or a race) is retried
here with backoff and then reported as CdnThrottled so the task tries again later.
"""

import time
import uuid

from .base import CdnBackend, CdnConfigurationError, CdnError, CdnRejected, CdnThrottled, InvalidationResult, Site


class CloudFrontBackend(CdnBackend):
    supports_wildcards = True
    max_paths_per_request = 3000
    max_wildcards_per_request = 15
    max_paths_in_progress = 3000
    max_wildcards_in_progress = 15

    def __init__(self, alias: str = "default", **options):
        self.distribution_id = options.pop("DISTRIBUTION_ID", "")
        self.endpoint_url = options.pop("ENDPOINT_URL", None) or None
        self.region = options.pop("REGION", "us-east-1")
        self.retries = int(options.pop("RETRIES", 4))
        self.backoff_seconds = float(options.pop("BACKOFF_SECONDS", 1.0))
        self.credentials = {
            key: options.pop(name)
            for name, key in (("ACCESS_KEY_ID", "aws_access_key_id"), ("SECRET_ACCESS_KEY", "aws_secret_access_key"))
            if name in options
        }
        super().__init__(alias, **options)
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "cloudfront",
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                config=Config(retries={"max_attempts": 3, "mode": "standard"}),
                **self.credentials,
            )
        return self._client

    def target(self, site: Site) -> str:
        distribution_id = site.config.get("distribution_id") or self.distribution_id
        if not distribution_id:
            raise CdnConfigurationError(
                f"website {site.website_id} has no CloudFront distribution_id (set it in the website's cdn_config "
                f"or OPTIONS['DISTRIBUTION_ID'] of CDN_BACKENDS[{self.alias!r}])"
            )
        return distribution_id

    def invalidate(self, site: Site, paths: list[str]) -> InvalidationResult:
        from botocore.exceptions import BotoCoreError, ClientError

        distribution_id = self.target(site)
        # Paths arrive in the canonical form (cdn.paths: percent-encoded once), as CloudFront wants them.
        items = list(paths)
        batch = {"Paths": {"Quantity": len(items), "Items": items}, "CallerReference": uuid.uuid4().hex}
        for attempt in range(self.retries + 1):
            try:
                response = self.client.create_invalidation(DistributionId=distribution_id, InvalidationBatch=batch)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in ("TooManyInvalidationsInProgress", "Throttling", "ThrottlingException"):
                    if attempt < self.retries:
                        time.sleep(self.backoff_seconds * 2**attempt)
                        continue
                    raise CdnThrottled(f"CloudFront: {code} for {distribution_id}", retry_after=60) from exc
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
                error = CdnRejected if 400 <= status < 500 else CdnError
                raise error(f"CloudFront refused the invalidation: {code}: {exc}") from exc
            except BotoCoreError as exc:
                raise CdnError(f"CloudFront unreachable: {exc}") from exc
            invalidation = response["Invalidation"]
            # moto says COMPLETED at once, AWS says InProgress then Completed: compare case-insensitively.
            return InvalidationResult(
                provider_id=invalidation["Id"], completed=invalidation["Status"].lower() == "completed"
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def status(self, site: Site, provider_id: str) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.get_invalidation(DistributionId=self.target(site), Id=provider_id)
        except (BotoCoreError, ClientError) as exc:
            raise CdnError(f"CloudFront: reading invalidation {provider_id} failed: {exc}") from exc
        return "completed" if response["Invalidation"]["Status"].lower() == "completed" else "in_progress"
