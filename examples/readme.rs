//! The usage example shown in README.md (a test checks the two stay identical).
use sendy_cd::{Pipeline, Strategy, memory::Account};

#[tokio::main(flavor = "current_thread", start_paused = true)] // simulated time
async fn main() -> sendy_cd::Result<()> {
    let account = Account::new(); // a simulated AWS account: swap in real backends later
    account.create_environment("blue")?; // live: DNS weight 100
    account.create_environment("green")?; // idle: DNS weight 0
    let pipeline = Pipeline::builder()
        .image_builder(account.image_builder())
        .environment(account.environment("blue")?)
        .environment(account.environment("green")?)
        .dns(account.dns())
        .strategy(Strategy::BlueGreen)
        .build()?;
    let revision = account.push("main", "Add checkout", "Ada <ada@example.com>")?;
    let record = pipeline.run(revision).await?;
    println!("{:?} on {:?}; weights {}", record.outcome, record.target, account.weights()?);
    Ok(())
}
