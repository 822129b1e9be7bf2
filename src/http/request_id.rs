//! The id that ties a request's log line to the answer the client saw.

/// Cloudflare's `cf-ray` when it is present and plain, otherwise fresh
/// random hex. Client-chosen text never reaches the logs unchecked.
pub fn request_id(cf_ray: Option<&str>) -> String {
    match cf_ray {
        Some(ray)
            if (1..=64).contains(&ray.len())
                && ray.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
        {
            ray.to_owned()
        }
        _ => {
            let mut b = [0u8; 12];
            // Without randomness the id is still unique enough to be useful
            // within a log stream, so it is not worth failing the request.
            let _ = getrandom::getrandom(&mut b);
            hex::encode(b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_plain_ray_and_replaces_anything_else() {
        assert_eq!(
            request_id(Some("8f2c1a9b3d4e5f60-AMS")),
            "8f2c1a9b3d4e5f60-AMS"
        );
        for odd in [
            None,
            Some(""),
            Some("a\"b"),
            Some("x y"),
            Some(&"a".repeat(65)[..]),
        ] {
            let id = request_id(odd);
            assert_eq!(id.len(), 24);
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(request_id(None), request_id(None));
    }
}
