"""Registry semantics, free of HTTP: uploads, blobs, manifests, tags, referrers."""
