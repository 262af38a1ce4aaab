//! SQLite's group commit (`durability`): concurrent transactions share
//! flushes, and every one that was told it committed is there.

use baobao_store::Engine;
use baobao_store::testing::{fresh_database, single_row_commits};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_share_flushes_and_every_acknowledged_one_is_there() {
    let db = fresh_database(Engine::Sqlite).await;
    // One after another: each commit waits for a flush of its own.
    let (commits_before, flushes_before) = db.store.group_commit_counts().unwrap();
    single_row_commits(&db.store, 20, 0).await.unwrap();
    let (commits, flushes) = db.store.group_commit_counts().unwrap();
    assert_eq!((commits - commits_before, flushes - flushes_before), (20, 20));

    // 64 writers at once: the writer commits while the disk flushes, and
    // one flush covers every commit made meanwhile.
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..64 {
        let store = db.store.clone();
        writers.spawn(async move { single_row_commits(&store, 8, 1000 + writer * 8).await });
    }
    for done in writers.join_all().await {
        done.unwrap();
    }
    let (after_commits, after_flushes) = db.store.group_commit_counts().unwrap();
    let (commits, flushes) = (after_commits - commits, after_flushes - flushes);
    assert_eq!(commits, 512);
    assert!(flushes < commits, "{flushes} flushes for {commits} commits");
    drop(db.store.clone());

    // Reopened (as after a restart), every acknowledged row is there.
    let reopened = baobao_store::Store::connect(&db.url).await.unwrap();
    assert_eq!(baobao_store::testing::bench_rows(&reopened).await.unwrap(), 20 + 512);
    eprintln!("{commits} concurrent commits took {flushes} flushes");
}
