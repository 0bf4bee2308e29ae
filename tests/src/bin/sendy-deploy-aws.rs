//! One blue/green deployment of every AWS backend against the emulator, with its journal and lease
//! in a SQLite store: the process the `kill -9` drill kills at random points and starts again
//! (`tests/tests/aws_emulator.rs`).
//!
//! `sendy-deploy-aws WORLD_JSON STORE COMMIT`: WORLD_JSON is what [`World::to_json`] wrote, STORE a
//! SQLite file, COMMIT the 40-hex commit to deploy (its image pushed already). The emulator is the
//! endpoint `AWS_ENDPOINT_URL` names, with the environment's credentials. A run of a commit that a
//! killed process left unfinished resumes it. Prints one JSON line: the result (`succeeded`,
//! `failed`, or the error's kind), the execution id and who resumed it.

use std::sync::Arc;

use sendy_cd::store::sqlite::SqliteStore;
use sendy_cd::{BranchName, CommitId, Outcome, Revision};
use sendy_cd_tests::world::World;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, world, store, commit] = args.as_slice() else {
        eprintln!("usage: sendy-deploy-aws WORLD_JSON STORE COMMIT");
        std::process::exit(2);
    };
    let world = World::from_json(&std::fs::read_to_string(world).expect("the world file"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let line = rt.block_on(async move {
        let config = sendy_cd::aws::AwsConfig::builder().region("us-east-1").load().await.expect("AWS config");
        let store = Arc::new(SqliteStore::open(store).expect("the store opens"));
        let pipeline = world.pipeline(&config, store);
        let revision = Revision::new(CommitId::parse(commit).expect("a commit"), BranchName::default());
        match pipeline.run(revision).await {
            Ok(record) => serde_json::json!({
                "result": if record.outcome == Outcome::Succeeded { "succeeded" } else { "failed" },
                "outcome": format!("{:?}", record.outcome),
                "execution": record.id.to_string(),
                "resumed_by": record.resumed_by,
            }),
            Err(e) => serde_json::json!({"result": e.kind(), "error": e.to_string()}),
        }
    });
    println!("{line}");
}
