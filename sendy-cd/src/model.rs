//! What flows through a deployment: revisions, builds, images, stacks, environments, traffic.
//!
//! Every type here is validated when it is built (`parse`, `new` or `FromStr`), so a value that exists is
//! a value AWS would accept; a bad value is a [`ParseError`] naming the kind of value and the reason,
//! raised before any call to AWS.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The kind of value a [`ParseError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ValueKind {
    /// A git commit id.
    CommitId,
    /// A git branch name.
    BranchName,
    /// A build id.
    BuildId,
    /// A container image reference.
    ImageRef,
    /// An image digest.
    Digest,
    /// A CloudFormation stack name.
    StackName,
    /// A stack parameter or output key.
    ParameterKey,
    /// A service URL.
    ServiceUrl,
    /// An environment name.
    EnvironmentName,
    /// A weighted-record set identifier.
    SetIdentifier,
    /// A traffic split.
    TrafficSplit,
    /// An opaque identifier (deployment, change, plan).
    Identifier,
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ValueKind::CommitId => "commit id",
            ValueKind::BranchName => "branch name",
            ValueKind::BuildId => "build id",
            ValueKind::ImageRef => "image reference",
            ValueKind::Digest => "image digest",
            ValueKind::StackName => "stack name",
            ValueKind::ParameterKey => "parameter key",
            ValueKind::ServiceUrl => "service URL",
            ValueKind::EnvironmentName => "environment name",
            ValueKind::SetIdentifier => "set identifier",
            ValueKind::TrafficSplit => "traffic split",
            ValueKind::Identifier => "identifier",
        };
        f.write_str(s)
    }
}

/// A value that failed validation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {input:?}: {reason}")]
pub struct ParseError {
    /// What kind of value it was meant to be.
    pub kind: ValueKind,
    /// The rejected input, cut to its first [`MAX_ECHO`](crate::error::MAX_ECHO) characters (with
    /// its full length) so that a huge input never makes a huge error.
    pub input: String,
    /// Why it was rejected.
    pub reason: Cow<'static, str>,
}

impl ParseError {
    pub(crate) fn new(kind: ValueKind, input: impl Into<String>, reason: impl Into<Cow<'static, str>>) -> Self {
        ParseError { kind, input: crate::error::truncate(&input.into()), reason: reason.into() }
    }
}

/// Implements `Display`, `AsRef<str>`, `FromStr`, `TryFrom<&str>`/`TryFrom<String>` and string serde
/// for a validated newtype over `String` whose validator is `fn validate(&str) -> Result<(), Cow<str>>`.
macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident, $kind:expr, $validate:expr) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates `value`.
            ///
            /// # Errors
            /// A [`ParseError`] naming the rule the value breaks.
            pub fn parse(value: impl Into<String>) -> Result<Self, ParseError> {
                let value = value.into();
                let check: fn(&str) -> Result<(), Cow<'static, str>> = $validate;
                match check(&value) {
                    Ok(()) => Ok($name(value)),
                    Err(reason) => Err(ParseError::new($kind, value, reason)),
                }
            }

            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                Self::parse(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = ParseError;
            fn try_from(s: &str) -> Result<Self, ParseError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(s: String) -> Result<Self, ParseError> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

string_newtype!(
    /// A full git commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hexadecimal digits.
    CommitId,
    ValueKind::CommitId,
    |s| {
        if s.len() != 40 && s.len() != 64 {
            return Err(format!("must be 40 or 64 hex digits, not {}", s.len()).into());
        }
        if !is_lower_hex(s) {
            return Err("must be lowercase hexadecimal".into());
        }
        Ok(())
    }
);

impl CommitId {
    /// The first seven digits, as `git log --oneline` shows them.
    pub fn short(&self) -> &str {
        &self.0[..7]
    }
}

string_newtype!(
    /// A git branch name, following `git check-ref-format --branch`.
    BranchName,
    ValueKind::BranchName,
    |s| {
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s == "@" {
            return Err("must not be \"@\"".into());
        }
        if s.len() > 255 {
            return Err("must be at most 255 bytes".into());
        }
        if let Some(c) = s.chars().find(|c| c.is_ascii_control() || " ~^:?*[\\".contains(*c)) {
            return Err(format!("must not contain {c:?}").into());
        }
        if s.contains("..") || s.contains("@{") || s.contains("//") {
            return Err("must not contain \"..\", \"@{\" or \"//\"".into());
        }
        if s.starts_with('/') || s.ends_with('/') || s.ends_with('.') || s.starts_with('-') {
            return Err("must not start with '/' or '-', nor end with '/' or '.'".into());
        }
        if s.split('/').any(|c| c.starts_with('.') || c.ends_with(".lock")) {
            return Err("no component may start with '.' or end with \".lock\"".into());
        }
        Ok(())
    }
);

impl Default for BranchName {
    fn default() -> Self {
        BranchName("main".to_owned())
    }
}

/// A commit on a branch: what a [`Source`](crate::Source) reports and a pipeline deploys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    /// The commit id.
    pub commit: CommitId,
    /// The branch the commit was read from.
    pub branch: BranchName,
    /// The commit message (may be empty).
    pub message: String,
    /// The author, as `Name <email>` or whatever the source reports.
    pub author: String,
    /// When the commit was made.
    pub time: jiff::Timestamp,
}

impl Revision {
    /// A revision with an empty message and author, made now.
    pub fn new(commit: CommitId, branch: BranchName) -> Self {
        Revision { commit, branch, message: String::new(), author: String::new(), time: jiff::Timestamp::now() }
    }

    /// The image tag a build of this revision is pushed with: the full commit id.
    pub fn image_tag(&self) -> &str {
        self.commit.as_str()
    }
}

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

string_newtype!(
    /// A CloudFormation stack name: 1 to 128 characters, a letter first, then letters, digits and '-'.
    StackName,
    ValueKind::StackName,
    |s| {
        if s.is_empty() || s.len() > 128 {
            return Err("must be 1 to 128 characters".into());
        }
        if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err("must start with a letter".into());
        }
        if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err("may contain only letters, digits and '-'".into());
        }
        Ok(())
    }
);

string_newtype!(
    /// A stack parameter or output key: 1 to 255 letters and digits.
    ParameterKey,
    ValueKind::ParameterKey,
    |s| {
        if s.is_empty() || s.len() > 255 || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err("must be 1 to 255 letters and digits".into());
        }
        Ok(())
    }
);

/// Values for a stack's parameters. A parameter not listed keeps its previous value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackParameters(BTreeMap<ParameterKey, String>);

impl StackParameters {
    /// No parameters.
    pub fn new() -> Self {
        StackParameters::default()
    }

    /// Adds or replaces `key`.
    ///
    /// # Errors
    /// A [`ParseError`] if `key` is not a valid parameter key.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Result<Self, ParseError> {
        self.0.insert(ParameterKey::parse(key)?, value.into());
        Ok(self)
    }

    /// Adds or replaces `key`.
    pub fn insert(&mut self, key: ParameterKey, value: impl Into<String>) {
        self.0.insert(key, value.into());
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v.as_str())
    }

    /// Every parameter, ordered by key.
    pub fn iter(&self) -> impl Iterator<Item = (&ParameterKey, &str)> {
        self.0.iter().map(|(k, v)| (k, v.as_str()))
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A stack's outputs, by key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackOutputs(BTreeMap<String, String>);

impl StackOutputs {
    /// Outputs from key/value pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        StackOutputs(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The service URL under output `key` (by convention `ServiceUrl`).
    ///
    /// # Errors
    /// A [`ParseError`] if the output is missing or not an http(s) URL.
    pub fn service_url(&self, key: &str) -> Result<ServiceUrl, ParseError> {
        match self.get(key) {
            Some(v) => ServiceUrl::parse(v),
            None => Err(ParseError::new(ValueKind::ServiceUrl, "", format!("the stack has no output {key:?}"))),
        }
    }

    /// Every output, ordered by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// The http or https URL a service is reached at.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServiceUrl(url::Url);

impl ServiceUrl {
    /// Parses an absolute http(s) URL with a host.
    ///
    /// # Errors
    /// A [`ParseError`] if it is not one.
    pub fn parse(input: &str) -> Result<ServiceUrl, ParseError> {
        let url = url::Url::parse(input).map_err(|e| ParseError::new(ValueKind::ServiceUrl, input, e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ParseError::new(ValueKind::ServiceUrl, input, "the scheme must be http or https"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(ParseError::new(ValueKind::ServiceUrl, input, "must have a host"));
        }
        Ok(ServiceUrl(url))
    }

    /// The host name.
    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }

    /// The URL of `path` on this service (`path` replaces the URL's own path).
    pub fn join(&self, path: &str) -> url::Url {
        let mut url = self.0.clone();
        url.set_path(path);
        url
    }

    /// The parsed URL.
    pub fn as_url(&self) -> &url::Url {
        &self.0
    }
}

impl fmt::Display for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl TryFrom<String> for ServiceUrl {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        ServiceUrl::parse(&s)
    }
}

impl From<ServiceUrl> for String {
    fn from(u: ServiceUrl) -> String {
        u.0.into()
    }
}

impl FromStr for ServiceUrl {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        ServiceUrl::parse(s)
    }
}

string_newtype!(
    /// An environment's name, such as `blue` or `green`: 1 to 63 lowercase letters, digits and '-',
    /// a letter first (a DNS label).
    EnvironmentName,
    ValueKind::EnvironmentName,
    |s| {
        if s.is_empty() || s.len() > 63 {
            return Err("must be 1 to 63 characters".into());
        }
        if !s.starts_with(|c: char| c.is_ascii_lowercase()) || s.ends_with('-') {
            return Err("must start with a lowercase letter and not end with '-'".into());
        }
        if !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err("may contain only lowercase letters, digits and '-'".into());
        }
        Ok(())
    }
);

string_newtype!(
    /// The set identifier of one weighted record (Route 53: 1 to 128 printable characters).
    SetIdentifier,
    ValueKind::SetIdentifier,
    |s| {
        if s.is_empty() || s.len() > 128 {
            return Err("must be 1 to 128 characters".into());
        }
        if s.chars().any(|c| c.is_control()) {
            return Err("must not contain control characters".into());
        }
        Ok(())
    }
);

impl From<&EnvironmentName> for SetIdentifier {
    fn from(name: &EnvironmentName) -> Self {
        SetIdentifier(name.0.clone())
    }
}

/// The weights of one DNS name across environments: a weight 0..=255 per set identifier, never all zero.
///
/// ```
/// use sendy_cd::{SetIdentifier, TrafficSplit};
/// let blue = SetIdentifier::parse("blue").unwrap();
/// let green = SetIdentifier::parse("green").unwrap();
/// let split = TrafficSplit::new([(blue.clone(), 90), (green.clone(), 10)]).unwrap();
/// assert_eq!(split.percent(&green), 10.0);
/// assert!(TrafficSplit::new([(blue, 0), (green, 0)]).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BTreeMap<SetIdentifier, u8>", into = "BTreeMap<SetIdentifier, u8>")]
pub struct TrafficSplit(BTreeMap<SetIdentifier, u8>);

impl TrafficSplit {
    /// A split from weights.
    ///
    /// # Errors
    /// A [`ParseError`] if there are no entries, a set identifier repeats, or every weight is zero.
    pub fn new(weights: impl IntoIterator<Item = (SetIdentifier, u8)>) -> Result<Self, ParseError> {
        let mut map = BTreeMap::new();
        for (id, w) in weights {
            if map.insert(id.clone(), w).is_some() {
                return Err(ParseError::new(ValueKind::TrafficSplit, id.0, "set identifier given twice"));
            }
        }
        TrafficSplit::try_from(map)
    }

    /// All traffic to `to`, none to each of `others`.
    ///
    /// # Errors
    /// A [`ParseError`] if `to` is among `others`.
    pub fn all_to<'a>(
        to: &SetIdentifier,
        others: impl IntoIterator<Item = &'a SetIdentifier>,
    ) -> Result<Self, ParseError> {
        TrafficSplit::new(std::iter::once((to.clone(), 100)).chain(others.into_iter().map(|o| (o.clone(), 0))))
    }

    /// The weight of `id` (0 if it is not part of the split).
    pub fn weight(&self, id: &SetIdentifier) -> u8 {
        self.0.get(id).copied().unwrap_or(0)
    }

    /// The share of traffic `id` receives, in percent.
    pub fn percent(&self, id: &SetIdentifier) -> f64 {
        let total: u32 = self.0.values().map(|w| u32::from(*w)).sum();
        f64::from(self.weight(id)) * 100.0 / f64::from(total)
    }

    /// Every set identifier and its weight.
    pub fn iter(&self) -> impl Iterator<Item = (&SetIdentifier, u8)> {
        self.0.iter().map(|(k, v)| (k, *v))
    }

    /// The set identifiers that receive traffic.
    pub fn live(&self) -> impl Iterator<Item = &SetIdentifier> {
        self.0.iter().filter(|(_, w)| **w > 0).map(|(k, _)| k)
    }

    /// Whether `id` is part of the split.
    pub fn contains(&self, id: &SetIdentifier) -> bool {
        self.0.contains_key(id)
    }
}

impl TryFrom<BTreeMap<SetIdentifier, u8>> for TrafficSplit {
    type Error = ParseError;
    fn try_from(map: BTreeMap<SetIdentifier, u8>) -> Result<Self, ParseError> {
        if map.is_empty() {
            return Err(ParseError::new(ValueKind::TrafficSplit, "", "must name at least one set identifier"));
        }
        if map.values().all(|w| *w == 0) {
            let input = map.keys().map(|k| k.0.as_str()).collect::<Vec<_>>().join(",");
            return Err(ParseError::new(ValueKind::TrafficSplit, input, "weights must not all be zero"));
        }
        Ok(TrafficSplit(map))
    }
}

impl From<TrafficSplit> for BTreeMap<SetIdentifier, u8> {
    fn from(s: TrafficSplit) -> Self {
        s.0
    }
}

impl fmt::Display for TrafficSplit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (k, w) in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{k}={w}")?;
        }
        Ok(())
    }
}

string_newtype!(
    /// An opaque identifier assigned by a backend (an ECS deployment id, a Route 53 change id, a
    /// change-set id, an execution id): 1 to 1600 printable characters.
    Id,
    ValueKind::Identifier,
    |s| {
        if s.is_empty() || s.len() > 1600 || s.chars().any(char::is_control) {
            return Err("must be 1 to 1600 printable characters".into());
        }
        Ok(())
    }
);

/// One rollout, pinned to the deployment id the backend created for it, so that its status is never
/// confused with another deployment's (a rollback, or a later deployment, of the same service).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    /// The deployment this rollout is.
    pub deployment_id: Id,
    /// The image it rolls out.
    pub image: ImageRef,
}

/// The stage of a deployment an event, record entry or error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Stage {
    /// Reading the source for the revision.
    Source,
    /// Building and pushing the image.
    Build,
    /// Planning and applying the environment's stack.
    Stack,
    /// Rolling the service out to the new image.
    Rollout,
    /// Checking the environment through its service URL.
    Verify,
    /// Moving DNS weights.
    Traffic,
    /// Putting traffic or the service back after a failure.
    Rollback,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Source => "source",
            Stage::Build => "build",
            Stage::Stack => "stack",
            Stage::Rollout => "rollout",
            Stage::Verify => "verify",
            Stage::Traffic => "traffic",
            Stage::Rollback => "rollback",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_ids() {
        let c = CommitId::parse("0123456789abcdef0123456789abcdef01234567").unwrap();
        assert_eq!(c.short(), "0123456");
        assert_eq!(CommitId::parse("abc").unwrap_err().kind, ValueKind::CommitId);
        assert!(CommitId::parse("0123456789ABCDEF0123456789abcdef01234567").is_err());
        assert!(CommitId::parse("g".repeat(40)).is_err());
        assert!(CommitId::parse("a".repeat(64)).is_ok());
    }

    #[test]
    fn branch_names() {
        for ok in ["main", "feature/x", "release-1.2", "a_b"] {
            assert!(BranchName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "@", "a..b", "a b", "/a", "a/", "a.lock", "a/.b", "a@{1}", "-x", "a:b", "a//b", "a."] {
            assert!(BranchName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn image_refs_round_trip() {
        let digest = format!("sha256:{}", "a".repeat(64));
        for s in [
            "nginx:1.27".to_owned(),
            "library/nginx:latest".to_owned(),
            "localhost:5000/app:v1".to_owned(),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/api:3f2a".to_owned(),
            format!("registry.example.com:443/app:v2@{digest}"),
            format!("app@{digest}"),
        ] {
            let image = ImageRef::parse(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(image.to_string(), s);
            let json = serde_json::to_string(&image).unwrap();
            assert_eq!(serde_json::from_str::<ImageRef>(&json).unwrap(), image);
        }
        let image = ImageRef::parse("localhost:5000/app:v1").unwrap();
        assert_eq!(image.registry(), Some("localhost:5000"));
        assert_eq!(image.tag(), Some("v1"));
        let image = ImageRef::parse("app:v1").unwrap();
        assert_eq!(image.registry(), None);
        assert_eq!(image.with_tag("v2").unwrap().to_string(), "app:v2");
        for bad in ["", "app", "App:v1", "app:", "app:-x", "app@sha256:zz", "/app:v1", "app//x:v1", "reg.io/:v1"] {
            let e = ImageRef::parse(bad).unwrap_err();
            assert_eq!(e.kind, ValueKind::ImageRef, "{bad}: {e}");
        }
    }

    #[test]
    fn digests() {
        let d = Digest::of(b"hello");
        assert_eq!(d.as_str(), "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse("md5:abc").is_err());
    }

    #[test]
    fn stack_names_and_parameters() {
        assert!(StackName::parse("app-blue").is_ok());
        for bad in ["", "1app", "app_blue", "app.blue", &"a".repeat(129)] {
            assert_eq!(StackName::parse(bad).unwrap_err().kind, ValueKind::StackName);
        }
        let p = StackParameters::new().with("ImageUri", "app:v1").unwrap();
        assert_eq!(p.get("ImageUri"), Some("app:v1"));
        assert!(StackParameters::new().with("Image-Uri", "x").is_err());
    }

    #[test]
    fn urls_and_outputs() {
        let outputs = StackOutputs::from_pairs([("ServiceUrl", "http://blue.example.com/")]);
        let url = outputs.service_url("ServiceUrl").unwrap();
        assert_eq!(url.host(), "blue.example.com");
        assert_eq!(url.join("/health").as_str(), "http://blue.example.com/health");
        assert!(outputs.service_url("Missing").is_err());
        assert!(ServiceUrl::parse("ftp://x").is_err());
        assert!(ServiceUrl::parse("not a url").is_err());
    }

    #[test]
    fn environment_names() {
        assert!(EnvironmentName::parse("blue").is_ok());
        assert!(EnvironmentName::parse("green-2").is_ok());
        for bad in ["", "Blue", "2blue", "blue-", "bl ue"] {
            assert!(EnvironmentName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn traffic_splits() {
        let blue = SetIdentifier::parse("blue").unwrap();
        let green = SetIdentifier::parse("green").unwrap();
        let split = TrafficSplit::all_to(&green, [&blue]).unwrap();
        assert_eq!(split.weight(&green), 100);
        assert_eq!(split.weight(&blue), 0);
        assert_eq!(split.live().collect::<Vec<_>>(), vec![&green]);
        assert!(TrafficSplit::new([]).is_err());
        assert!(TrafficSplit::new([(blue.clone(), 1), (blue.clone(), 2)]).is_err());
        let json = serde_json::to_string(&split).unwrap();
        assert_eq!(json, r#"{"blue":0,"green":100}"#);
        assert!(serde_json::from_str::<TrafficSplit>(r#"{"blue":0}"#).is_err());
        assert_eq!(split.to_string(), "blue=0 green=100");
    }
}
