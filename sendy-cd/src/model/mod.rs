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

mod image;
mod source;
mod stack;
mod traffic;

pub use image::{BuildId, Digest, ImageRef};
pub use source::{BranchName, CommitId, Revision};
pub use stack::{ParameterKey, ServiceUrl, StackName, StackOutputs, StackParameters};
pub use traffic::{EnvironmentName, SetIdentifier, TrafficSplit};

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

impl Stage {
    /// The stage's name, as records show it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Stage::Source => "source",
            Stage::Build => "build",
            Stage::Stack => "stack",
            Stage::Rollout => "rollout",
            Stage::Verify => "verify",
            Stage::Traffic => "traffic",
            Stage::Rollback => "rollback",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
        let p = StackParameters::parse([("ImageUri", "app:v1")]).unwrap();
        assert_eq!(p.get("ImageUri"), Some("app:v1"));
        let err = StackParameters::parse([("Env", "blue"), ("Image-Uri", "x")]).unwrap_err();
        assert_eq!(err.kind, ValueKind::ParameterKey);
        let p = p.with(ParameterKey::parse("Env").unwrap(), "blue");
        assert_eq!(p.get("Env"), Some("blue"));
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
