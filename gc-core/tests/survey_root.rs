//! `Storage::survey_root` of the filesystem and memory backends: what a person sees around a
//! root that holds no registry.

use gc_core::storage::{FsStorage, MemStorage, RootSurvey, Storage};

#[tokio::test]
async fn filesystem_survey_lists_the_root_and_its_parent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = dir.path().join("registry");
    std::fs::create_dir_all(registry.join("docker/registry/v2/blobs")).expect("mkdir");
    std::fs::write(registry.join("backup.tar"), b"x").expect("write");
    std::fs::write(dir.path().join("notes.txt"), b"x").expect("write");

    // The right root: its own entries, and the parent's.
    let survey = FsStorage::new(&registry)
        .survey_root()
        .await
        .expect("survey");
    assert_eq!(survey.under_root, ["backup.tar", "docker/"]);
    assert_eq!(survey.beside_root, ["notes.txt", "registry/"]);

    // A mistyped root does not exist: nothing under it, the real one beside it.
    let storage = FsStorage::new(dir.path().join("registy"));
    let survey = storage.survey_root().await.expect("survey");
    assert!(survey.under_root.is_empty());
    assert_eq!(survey.beside_root, ["notes.txt", "registry/"]);
    assert_eq!(storage.request_counts().list, 2);

    // The top of the filesystem has no parent.
    let survey = FsStorage::new("/").survey_root().await.expect("survey");
    assert!(survey.beside_root.is_empty());
    assert!(survey.under_root.iter().any(|n| n == "etc/"), "{survey:?}");
}

#[tokio::test]
async fn filesystem_survey_keeps_the_first_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..RootSurvey::MAX_ENTRIES + 5 {
        std::fs::write(dir.path().join(format!("f{i:03}")), b"x").expect("write");
    }
    let survey = FsStorage::new(dir.path())
        .survey_root()
        .await
        .expect("survey");
    let expected: Vec<String> = (0..RootSurvey::MAX_ENTRIES)
        .map(|i| format!("f{i:03}"))
        .collect();
    assert_eq!(survey.under_root, expected);
}

#[tokio::test]
async fn memory_survey_names_first_segments() {
    let mem = MemStorage::new();
    mem.put("docker/registry/v2/blobs/x", b"x".to_vec());
    mem.put("docker/registry/v2/repositories/y", b"y".to_vec());
    mem.put("backup.tar", b"z".to_vec());
    mem.put("a.b/c", b"z".to_vec());
    let survey = mem.survey_root().await.expect("survey");
    assert_eq!(survey.under_root, ["a.b/", "backup.tar", "docker/"]);
    assert!(survey.beside_root.is_empty());

    let many = MemStorage::new();
    for i in 0..RootSurvey::MAX_ENTRIES + 5 {
        many.put(format!("d{i:03}/k"), b"x".to_vec());
    }
    let survey = many.survey_root().await.expect("survey");
    assert_eq!(survey.under_root.len(), RootSurvey::MAX_ENTRIES);
    assert_eq!(survey.under_root.last().map(String::as_str), Some("d019/"));
}
