//! One execution as a single HTML file (no script, no external asset): a CI artifact.

use maud::{DOCTYPE, PreEscaped, html};

use crate::record::ExecutionRecord;

/// `record` as a self-contained HTML page: its summary, its stages as a timeline, every step with its
/// handles, its checks, analyses and ECS hooks, and what was undone.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> sendy_cd::Result<()> {
/// use sendy_cd::memory::Account;
/// let account = Account::new();
/// account.create_environment("blue")?;
/// account.create_environment("green")?;
/// let pipeline = sendy_cd::Pipeline::builder()
///     .image_builder(account.image_builder())
///     .environment(account.environment("blue")?)
///     .environment(account.environment("green")?)
///     .dns(account.dns())
///     .build()?;
/// let record = pipeline.run(account.push("main", "a change", "Ada")?).await?;
/// let page = sendy_cd::dashboard::report::html(&record);
/// assert!(page.starts_with("<!DOCTYPE html>") && page.contains(record.id.as_str()));
/// # Ok(()) }
/// ```
pub fn html(record: &ExecutionRecord) -> String {
    let now =
        record.duration_ms.unwrap_or_else(|| record.stages.iter().filter_map(|s| s.finished_ms).max().unwrap_or(0));
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "sendy-cd: " (record.id) }
                style { (PreEscaped(super::pages::STYLE)) }
            }
            body {
                header { span { "sendy-cd execution report" } }
                main { (super::pages::execution_body(record, now)) }
            }
        }
    }
    .into_string()
}
