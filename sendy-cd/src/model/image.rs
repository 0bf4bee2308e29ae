//! What a build yields: build ids, digests, image references.

use super::*;

string_newtype!(
    /// A build's id, as the builder reports it (for CodeBuild `project:uuid`).
    BuildId,
    ValueKind::BuildId,
    |s| {
        if s.is_empty() || s.len() > 255 {
            return Err("must be 1 to 255 characters".into());
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain whitespace".into());
        }
        Ok(())
    }
);

string_newtype!(
    /// A content digest of an image manifest: `sha256:` and 64 lowercase hex digits.
    Digest,
    ValueKind::Digest,
    |s| {
        let Some(hex) = s.strip_prefix("sha256:") else {
            return Err("must start with \"sha256:\"".into());
        };
        if hex.len() != 64 || !is_lower_hex(hex) {
            return Err("must have 64 lowercase hex digits after \"sha256:\"".into());
        }
        Ok(())
    }
);

impl Digest {
    /// The digest of `bytes` (SHA-256).
    pub fn of(bytes: &[u8]) -> Digest {
        use sha2::Digest as _;
        let hash = sha2::Sha256::digest(bytes);
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        Digest(format!("sha256:{hex}"))
    }
}

/// A container image reference: `[registry/]repository[:tag][@sha256:digest]`.
///
/// At least a tag or a digest is required. Parsing and `Display` round-trip.
///
/// ```
/// use sendy_cd::ImageRef;
/// let s = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/api:3f2a";
/// let image: ImageRef = s.parse().unwrap();
/// assert_eq!(image.registry(), Some("123456789012.dkr.ecr.us-east-1.amazonaws.com"));
/// assert_eq!(image.repository(), "shop/api");
/// assert_eq!(image.tag(), Some("3f2a"));
/// assert_eq!(image.to_string(), s);
/// assert!("Shop/API:latest".parse::<ImageRef>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: Option<String>,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageRef {
    /// Parses a reference.
    ///
    /// # Errors
    /// A [`ParseError`] naming the part that is malformed.
    pub fn parse(input: &str) -> Result<ImageRef, ParseError> {
        let err = |reason: &'static str| ParseError::new(ValueKind::ImageRef, input, reason);
        if input.is_empty() || input.len() > 1024 {
            return Err(err("must be 1 to 1024 characters"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => {
                (rest, Some(Digest::parse(d).map_err(|e| ParseError::new(ValueKind::ImageRef, input, e.reason))?))
            }
            None => (input, None),
        };
        // A tag follows the last ':' that comes after the last '/' (a registry may have a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && tag.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && tag.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !ok {
                return Err(err("the tag must be 1 to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'"));
            }
        }
        if tag.is_none() && digest.is_none() {
            return Err(err("needs a tag or a digest"));
        }
        let mut parts = name.split('/');
        let first = parts.next().unwrap_or_default();
        let (registry, repository) =
            if name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost") {
                (Some(first.to_owned()), name[first.len() + 1..].to_owned())
            } else {
                (None, name.to_owned())
            };
        if let Some(registry) = &registry {
            let ok = registry.chars().all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c))
                && !registry.starts_with(['.', '-', ':']);
            if !ok {
                return Err(err("the registry must be a host name with an optional port"));
            }
        }
        if repository.is_empty() {
            return Err(err("the repository must not be empty"));
        }
        for component in repository.split('/') {
            let ok = !component.is_empty()
                && component.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                && component.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && component.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
            if !ok {
                return Err(err(
                    "each repository component must be lowercase letters and digits, separated by '.', '_' or '-'",
                ));
            }
        }
        Ok(ImageRef { registry, repository, tag: tag.map(str::to_owned), digest })
    }

    /// The registry host (and port), if any.
    pub fn registry(&self) -> Option<&str> {
        self.registry.as_deref()
    }

    /// The repository path inside the registry.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same image pinned to `digest`.
    pub fn with_digest(mut self, digest: Digest) -> ImageRef {
        self.digest = Some(digest);
        self
    }

    /// The same repository with another tag (the digest is dropped, since it belonged to the old tag).
    ///
    /// # Errors
    /// A [`ParseError`] if `tag` is not a valid tag.
    pub fn with_tag(&self, tag: &str) -> Result<ImageRef, ParseError> {
        let mut base = self.registry.clone().map(|r| format!("{r}/")).unwrap_or_default();
        base.push_str(&self.repository);
        ImageRef::parse(&format!("{base}:{tag}"))
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(r) = &self.registry {
            write!(f, "{r}/")?;
        }
        f.write_str(&self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        ImageRef::parse(s)
    }
}

impl Serialize for ImageRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ImageRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ImageRef::parse(&s).map_err(serde::de::Error::custom)
    }
}
