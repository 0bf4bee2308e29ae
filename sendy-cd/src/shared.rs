//! [`Shared`]: what the setters that take a backend accept.

use std::sync::Arc;

use crate::analysis::{AlarmSource, MetricSource};
use crate::builder::Builder;
use crate::deployer::{Deployer, ManagedDeployer};
use crate::dns::DnsSwitch;
use crate::source::Source;
use crate::stack::Stack;
use crate::store::Store;
use crate::verify::Verifier;

/// A backend a setter can take: the backend itself, an `Arc` of it, or an `Arc<dyn Trait>` shared
/// with other code. So `.dns(account.dns())`, `.dns(Arc::new(account.dns()))` and `.dns(shared)`
/// (an `Arc<dyn DnsSwitch>`) all read naturally; none wraps a shared backend twice.
pub trait Shared<T: ?Sized> {
    /// The backend behind an `Arc<dyn Trait>`.
    fn into_shared(self) -> Arc<T>;
}

macro_rules! shared {
    ($($t:ident),*) => {$(
        impl<B: $t + 'static> Shared<dyn $t> for B {
            fn into_shared(self) -> Arc<dyn $t> {
                Arc::new(self)
            }
        }
        impl<B: $t + 'static> Shared<dyn $t> for Arc<B> {
            fn into_shared(self) -> Arc<dyn $t> {
                self
            }
        }
        impl Shared<dyn $t> for Arc<dyn $t> {
            fn into_shared(self) -> Arc<dyn $t> {
                self
            }
        }
    )*};
}

shared!(Source, Builder, Stack, Deployer, ManagedDeployer, DnsSwitch, Verifier, Store, MetricSource, AlarmSource);
