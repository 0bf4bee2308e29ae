//! What a stack takes and gives: names, parameters, outputs, the service URL.

use super::*;

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

    /// Parameters from `(key, value)` pairs, every key checked at once:
    /// `StackParameters::parse([("Env", "blue"), ("DesiredCount", "4")])?`.
    ///
    /// # Errors
    /// A [`ParseError`] for the first key that is not a valid parameter key.
    pub fn parse<K: AsRef<str>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self, ParseError> {
        let mut parameters = Self::new();
        for (key, value) in pairs {
            parameters.insert(ParameterKey::parse(key.as_ref())?, value);
        }
        Ok(parameters)
    }

    /// With `key` added or replaced (a [`ParameterKey`] is valid already, so this never fails).
    #[must_use]
    pub fn with(mut self, key: ParameterKey, value: impl Into<String>) -> Self {
        self.0.insert(key, value.into());
        self
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
