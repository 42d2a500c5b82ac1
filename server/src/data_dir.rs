//! Where durable data lives: the database, the secret that keys address hashes, the moderator
//! token. Embedded: all three in the data directory, created on first start. With a Postgres
//! database (`BURNER_DATABASE_URL`): all three there, so every node of a cluster hashes an
//! address alike and accepts the same token.

use crate::store::{PostgresStore, SqliteStore, Store};
use anyhow::Context;
use std::{fs, io::Write, path::Path, sync::Arc};

pub struct DataDir {
    pub store: Arc<dyn Store>,
    /// Keys the address hashes moderators see. Never leaves the data directory.
    pub secret: [u8; 32],
    pub mod_token: String,
}

const SECRET_FILE: &str = "secret.key";
const TOKEN_FILE: &str = "moderator.token";
const DATABASE_FILE: &str = "burner.db";

/// The Postgres database at `url`, with the secrets the first node to start made.
pub async fn open_shared(url: &str, configured_token: Option<&str>) -> anyhow::Result<DataDir> {
    let store = PostgresStore::open(url).await.context("cannot open the Postgres database (BURNER_DATABASE_URL)")?;
    let secret_hex = store.shared_secret(SECRET_FILE, || hex::encode(rand::random::<[u8; 32]>())).await?;
    let mut secret = [0u8; 32];
    hex::decode_to_slice(secret_hex.trim(), &mut secret).context("the stored hashing key is not 64 hex digits")?;
    let mod_token = match configured_token.map(str::trim).filter(|t| !t.is_empty()) {
        Some(token) => token.to_owned(),
        None => {
            let made = hex::encode(rand::random::<[u8; 24]>());
            let token = store.shared_secret(TOKEN_FILE, || made.clone()).await?;
            if token == made {
                tracing::warn!("moderator token (printed once; kept in the database's secrets table): {token}");
            }
            token
        }
    };
    Ok(DataDir { store: Arc::new(store), secret, mod_token })
}

pub async fn open(dir: &Path, configured_token: Option<&str>) -> anyhow::Result<DataDir> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let secret_hex = read_or_create(&dir.join(SECRET_FILE), || hex::encode(rand::random::<[u8; 32]>()))?;
    let mut secret = [0u8; 32];
    hex::decode_to_slice(secret_hex.trim(), &mut secret)
        .with_context(|| format!("{} is not 64 hex digits", dir.join(SECRET_FILE).display()))?;
    let mod_token = match configured_token.map(str::trim).filter(|t| !t.is_empty()) {
        Some(token) => token.to_owned(),
        None => {
            let path = dir.join(TOKEN_FILE);
            let existed = path.exists();
            let token = read_or_create(&path, || hex::encode(rand::random::<[u8; 24]>()))?.trim().to_owned();
            if !existed {
                // Printed this once, when it is made; afterwards it is only in the file.
                tracing::warn!("moderator token (printed once; kept in {}): {token}", path.display());
            }
            token
        }
    };
    let store = SqliteStore::open(&dir.join(DATABASE_FILE))
        .await
        .with_context(|| format!("cannot open the database in {}", dir.display()))?;
    Ok(DataDir { store: Arc::new(store), secret, mod_token })
}

/// The file's contents, or `make()` written to a new file only its owner can read.
fn read_or_create(path: &Path, make: impl FnOnce() -> String) -> anyhow::Result<String> {
    if let Ok(existing) = fs::read_to_string(path) {
        return Ok(existing);
    }
    let value = make();
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(value.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_generated_token_and_the_hashing_key_are_kept_and_reused() {
        let dir = tempfile::tempdir().expect("dir");
        let first = open(dir.path(), None).await.expect("first start");
        assert_eq!(first.mod_token.len(), 48);
        assert_eq!(fs::read_to_string(dir.path().join(TOKEN_FILE)).expect("token file"), first.mod_token);
        drop(first.store);
        let again = open(dir.path(), None).await.expect("second start");
        assert_eq!((again.mod_token.as_str(), again.secret), (first.mod_token.as_str(), first.secret));
        drop(again.store);
        let configured = open(dir.path(), Some(" chosen-token ")).await.expect("configured");
        assert_eq!(configured.mod_token, "chosen-token", "the environment wins");
        assert_eq!(configured.secret, first.secret);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(SECRET_FILE)).expect("key").permissions().mode();
            assert_eq!(mode & 0o077, 0, "only the owner reads the key");
        }
    }
}
