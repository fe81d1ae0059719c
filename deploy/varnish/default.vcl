# Varnish in front of the platform origin (Django): caches tenant websites by Host (their verified
# hostnames and <website id>.SITES_PREVIEW_DOMAIN), honouring the origin's Cache-Control (cdn/policy.py)
# and ETag; accepts PURGE (one URL) and BAN (a URL regex for one host, in X-Ban-Url) from trusted
# addresses only. Tenant pages are never served on the platform's host (its /sites/ only redirects).
#
# Used as is by deploy/local/stack (which replaces the backend port with the stack's origin port)
# and by the tests. In production, set .host/.port to the origin (gunicorn) and extend `purgers`.
vcl 4.1;

import std;

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
    # --- cache key: Host and encoding (see also vcl_hash, vcl_purge) ---
    # One object per site whatever the spelling of its Host: lower case, no port, no trailing dot
    # ("WWW.Example.TEST.:80" is "www.example.test"). The origin is sent the normalised name.
    set req.http.host = regsub(std.tolower(req.http.host), "\.?(:[0-9]+)?$", "");
    # The origin compresses text types (br or gzip) and sends Vary: Accept-Encoding. Varnish itself
    # would rewrite Accept-Encoding to gzip, so the chosen encoding is kept in X-Encoding, keys the
    # object (vcl_hash) and is what the origin is asked for (vcl_backend_fetch).
    if (req.restarts == 0) {
        if (req.method == "PURGE") {
            set req.http.X-Encoding = "identity";
        } elsif (req.http.Accept-Encoding ~ "(^|[ ,])br([ ,;]|$)") {
            set req.http.X-Encoding = "br";
        } elsif (req.http.Accept-Encoding ~ "(^|[ ,])gzip([ ,;]|$)") {
            set req.http.X-Encoding = "gzip";
        } else {
            set req.http.X-Encoding = "identity";
        }
    }
    # --- end cache key ---
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

# --- cache key: the path without its query string, the normalised Host, the encoding ---
# Tenant sites are static: the origin answers a path the same whatever its query string, so
# "/?utm_source=x" is the object of "/" and purging a path purges every query variant.
sub vcl_hash {
    hash_data(regsub(req.url, "\?.*$", ""));
    hash_data(req.http.host);
    hash_data(req.http.X-Encoding);
    return (lookup);
}

# A PURGE drops the path's object in every encoding: one pass per encoding (restarts keep X-Encoding).
sub vcl_purge {
    if (req.http.X-Encoding == "identity") {
        set req.http.X-Encoding = "gzip";
        return (restart);
    }
    if (req.http.X-Encoding == "gzip") {
        set req.http.X-Encoding = "br";
        return (restart);
    }
    return (synth(200, "Purged"));
}

sub vcl_backend_fetch {
    if (bereq.http.X-Encoding == "identity") {
        unset bereq.http.Accept-Encoding;
    } else {
        set bereq.http.Accept-Encoding = bereq.http.X-Encoding;
    }
    unset bereq.http.X-Encoding;
}
# --- end cache key ---

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
