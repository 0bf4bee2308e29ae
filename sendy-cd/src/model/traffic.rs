//! Where traffic goes: environments, set identifiers, weights.

use super::*;

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
