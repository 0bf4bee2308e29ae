//! How the DynamoDB store's items are keyed, written and read back.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::record::ExecutionRecord;

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn pk(pipeline: &str) -> AttributeValue {
    s(format!("pipeline#{pipeline}"))
}

pub(super) fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, key: &str) -> Option<&'a str> {
    item.get(key).and_then(|v| v.as_s().ok()).map(String::as_str)
}

pub(super) fn get_n(item: &HashMap<String, AttributeValue>, key: &str) -> Option<i64> {
    item.get(key).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

pub(super) fn checksum(json: &str) -> String {
    Sha256::digest(json.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The JSON of an item's `attr`, if its checksum matches.
pub(super) fn checked<'a>(item: &'a HashMap<String, AttributeValue>, attr: &str) -> Option<&'a str> {
    let json = get_s(item, attr)?;
    if Some(checksum(json).as_str()) != get_s(item, "checksum") {
        tracing::warn!("dynamodb store: an item whose checksum does not match was skipped");
        return None;
    }
    Some(json)
}

/// An execution from its item and its step items (in any order); `None` (with a warning) when an
/// item is unreadable or a step is missing: a torn write is skipped, never fatal.
pub(super) fn decode(
    header: &HashMap<String, AttributeValue>,
    steps: &[&HashMap<String, AttributeValue>],
) -> Option<ExecutionRecord> {
    let mut record: ExecutionRecord = serde_json::from_str(checked(header, "record")?)
        .map_err(|e| tracing::warn!(error = %e, "dynamodb store: an unreadable record was skipped"))
        .ok()?;
    let count = usize::try_from(get_n(header, "steps").unwrap_or(0)).ok()?;
    let mut by_index = BTreeMap::new();
    for item in steps {
        let index = get_s(item, "sk")?.rsplit('#').next()?.parse::<usize>().ok()?;
        by_index.insert(index, *item);
    }
    for index in 0..count {
        let Some(item) = by_index.get(&index) else {
            tracing::warn!(execution = %record.id, index, "dynamodb store: a step item is missing; the record was skipped");
            return None;
        };
        let step = serde_json::from_str(checked(item, "step")?)
            .map_err(|e| tracing::warn!(error = %e, "dynamodb store: an unreadable step was skipped"))
            .ok()?;
        record.steps.push(step);
    }
    Some(record)
}

pub(super) fn exec_sk(seq: i64) -> String {
    format!("exec#{seq:020}")
}

pub(super) fn encode(what: &str, value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::Backend(format!("dynamodb store: cannot write the {what}: {e}").into()))
}

pub(super) fn step_sk(exec: &str, index: usize) -> String {
    format!("{exec}#step#{index:06}")
}
