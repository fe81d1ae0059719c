import pytest

from cdn.backends.cloudfront import CloudFrontBackend
from cdn.batching import chunk_paths, collapse_paths, normalize_path, plan_requests


def test_duplicates_and_covered_paths_collapse():
    assert collapse_paths(["/a.html", "/a.html", "/blog/*", "/blog/x.html", "/blog/2024/y.html"]) == [
        "/a.html",
        "/blog/*",
    ]
    assert collapse_paths(["/x", "/*"]) == ["/*"]


def test_a_crowded_directory_becomes_one_wildcard_deepest_first():
    paths = [f"/blog/2024/post-{i}.html" for i in range(150)] + ["/blog/index.html", "/about.html"]
    assert collapse_paths(paths, threshold=100) == ["/about.html", "/blog/2024/*", "/blog/index.html"]
    assert len(collapse_paths(paths, threshold=None)) == 152


def test_too_many_wildcards_merge_upward():
    paths = [f"/d{j}/f{i}.html" for j in range(20) for i in range(10)]
    collapsed = collapse_paths(paths, threshold=5, max_wildcards=15)
    assert collapsed == ["/*"]
    paths = [f"/docs/d{j}/f{i}.html" for j in range(20) for i in range(10)] + ["/keep.html"]
    assert collapse_paths(paths, threshold=5, max_wildcards=15) == ["/docs/*", "/keep.html"]


def test_chunks_respect_path_and_wildcard_limits():
    paths = [f"/p{i}" for i in range(7)] + [f"/w{i}/*" for i in range(5)]
    chunks = chunk_paths(paths, max_paths=4, max_wildcards=2)
    assert all(len(chunk) <= 4 and sum(p.endswith("*") for p in chunk) <= 2 for chunk in chunks)
    assert [p for chunk in chunks for p in chunk] == paths


def test_ten_thousand_paths_plan_into_at_most_four_cloudfront_requests():
    backend = CloudFrontBackend(alias="cf", DISTRIBUTION_ID="E1")
    scattered = [f"/{i}/index.html" for i in range(10_000)]
    assert len(plan_requests(scattered, backend)) <= 4
    assert len(plan_requests(scattered, backend, threshold=None)) == 4


@pytest.mark.parametrize("bad", ["relative", "/a*b", "/blog*", "/x\ny", 5, "/../etc", "//evil.test/x"])
def test_bad_paths_are_refused(bad):
    with pytest.raises(ValueError):
        normalize_path(bad)
