# Varnish in front of the platform origin (Django): caches tenant websites by Host (their verified
# hostnames and <website id>.SITES_PREVIEW_DOMAIN), honouring the origin's Cache-Control (cdn/policy.py)
# and ETag; accepts PURGE (one URL) and BAN (a URL regex for one host, in X-Ban-Url) from trusted
# addresses only. Tenant pages are never served on the platform's host (its /sites/ only redirects).
#
# Used as is by deploy/local/stack (which replaces the backend port with the stack's origin port)
# and by the tests. In production, set .host/.port to the origin (gunicorn) and extend `purgers`.
vcl 4.1;

backend origin {
    .host = "127.0.0.1";
    .port = "8000";
    .connect_timeout = 2s;
    .first_byte_timeout = 30s;
    .between_bytes_timeout = 10s;
}

# Who may purge: the platform's workers. Anyone else gets 405.
acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(405, "Purging not allowed"));
        }
        return (purge);
    }
    if (req.method == "BAN") {
        if (client.ip !~ purgers) {
            return (synth(405, "Banning not allowed"));
        }
        if (!req.http.X-Ban-Url) {
            return (synth(400, "X-Ban-Url header required"));
        }
        # Ban on object headers (not req.*) so the ban lurker can evict in the background.
        ban("obj.http.X-Cache-Host == " + req.http.host + " && obj.http.X-Cache-Url ~ " + req.http.X-Ban-Url);
        return (synth(200, "Banned"));
    }
    # The API, the operator console and the probes are private or live: never cached.
    if (req.url ~ "^/(api|admin|metrics|healthz|readyz|static)(/|$)") {
        return (pass);
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    # Tenant websites are public static content: a cookie (analytics, consent) must not bypass or
    # split the cache.
    unset req.http.Cookie;
    return (hash);
}

sub vcl_backend_response {
    # A cached response is shared by every visitor: it must never set a cookie (a session handed to the
    # next visitor). The origin sets none on what may be cached; this holds even if that changes.
    if (!bereq.uncacheable) {
        unset beresp.http.Set-Cookie;
    }
    # Remember what the object is for, for BAN.
    set beresp.http.X-Cache-Url = bereq.url;
    set beresp.http.X-Cache-Host = bereq.http.host;
    # Errors from the origin are retried soon rather than cached for long.
    if (beresp.status >= 500) {
        set beresp.ttl = 0s;
        set beresp.uncacheable = true;
        return (deliver);
    }
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    unset resp.http.X-Cache-Url;
    unset resp.http.X-Cache-Host;
}
