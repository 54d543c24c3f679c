//! Watching the policy directory, and noticing when it is replaced.
//!
//! notify (inotify on Linux) watches the directory's inode, recursively.
//! Deploy tools often replace the directory rather than its files:
//! `rm -rf policies && cp -r new policies` and `mv new policies` put a new
//! inode at the path, and `ln -sfn releases/v2 policies` makes the path
//! resolve to another directory; a watch on the old inode then sees nothing
//! of what is served from now on. (`rsync --delete` replaces the files
//! inside, which the recursive watch sees.) So, besides the watch itself:
//!
//! - the parent directory is watched too, without recursion, so a
//!   replacement of the directory's entry is noticed at once; and
//! - every [`IDENTITY_CHECK`] the path is resolved and its identity (device
//!   and inode of the directory it leads to) compared with the watched one.
//!   This is the backstop for what the parent watch cannot see: a parent
//!   that is itself replaced, a symbolic link swapped higher up the path,
//!   an overflowed event queue. One `stat` a second costs nothing, and
//!   bounds how long a replacement can go unseen.
//!
//! When the identity changes, the watch is re-established on what is at the
//! path now and the set is reloaded. While nothing (or no directory) is at
//! the path, or it can't be watched, the last good set keeps serving and
//! the watch is reported lost: a warning in the log (and an info line when
//! it is back), `reload.watch` in `GET /api/admin/status`, and the
//! `warden_policy_watch_up` gauge (0) and `warden_policy_watch_losses_total`
//! counter.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::Watcher as _;
use tokio::sync::{mpsc, watch};

use super::{DEBOUNCE, MAX_DEBOUNCE, PolicyReloader};
use crate::state::AppState;

/// How often the directory's identity is checked.
pub const IDENTITY_CHECK: Duration = Duration::from_secs(1);

/// What a filesystem event asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// Something inside the directory changed: reload.
    Files,
    /// Something next to it changed (or events were lost): check whether
    /// the directory was replaced.
    Check,
    /// The watched directory itself was removed or moved away: the watch
    /// is dead whatever is at the path now (a new directory can reuse the
    /// old one's inode number).
    Rewatch,
}

/// Which directory a path leads to: device, inode and (where the file
/// system records it) creation time, since a directory created right after
/// another was removed often gets the same inode number.
type Identity = (u64, u64, Option<std::time::SystemTime>);

/// The identity of the directory `path` leads to (symbolic links
/// followed), or `None` when there is no directory there.
fn identity(path: &Path) -> Option<Identity> {
    let meta = std::fs::metadata(path).ok().filter(std::fs::Metadata::is_dir)?;
    let created = meta.created().ok();
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        Some((meta.dev(), meta.ino(), created))
    }
    #[cfg(not(unix))]
    {
        Some((0, 0, created))
    }
}

/// A live watch and the identity of the directory it watches.
struct Watched {
    _watcher: notify::RecommendedWatcher,
    identity: Identity,
}

/// Watches `dir` (recursively) and its parent (not recursively).
fn establish(dir: &Path, tx: &mpsc::UnboundedSender<Signal>) -> Result<Watched, String> {
    let inside = dir.to_path_buf();
    let tx = tx.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
        Ok(e) if e.kind.is_access() => {}
        Ok(e) => {
            let root_gone = matches!(
                e.kind,
                notify::EventKind::Remove(_) | notify::EventKind::Modify(notify::event::ModifyKind::Name(_))
            ) && e.paths.iter().any(|p| p == &inside);
            let signal = if root_gone {
                Signal::Rewatch
            } else if e.paths.iter().any(|p| p.starts_with(&inside)) {
                Signal::Files
            } else {
                Signal::Check
            };
            let _ = tx.send(signal);
        }
        // Lost events (a queue overflow): look again at everything.
        Err(_) => {
            let _ = tx.send(Signal::Check);
            let _ = tx.send(Signal::Files);
        }
    })
    .map_err(|e| format!("could not start a watcher: {e}"))?;
    watcher.watch(dir, notify::RecursiveMode::Recursive).map_err(|e| format!("could not watch it: {e}"))?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let Err(e) = watcher.watch(&parent, notify::RecursiveMode::NonRecursive) {
        // The periodic identity check still notices a replacement.
        tracing::debug!(error = %e, parent = %parent.display(), "could not watch the policy directory's parent");
    }
    // Read after watching: if the directory was replaced in between, the
    // next check sees a different identity and watches again.
    let identity = identity(dir).ok_or_else(|| "it disappeared while a watch was being set up".to_owned())?;
    Ok(Watched { _watcher: watcher, identity })
}

/// Watches the policy directory and reloads after each burst of changes;
/// follows the directory when it is replaced (see the module
/// documentation). Fails if the directory can't be watched at start-up.
pub fn spawn_watcher(
    state: AppState,
    reloader: Arc<PolicyReloader>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let dir = reloader.dir().to_path_buf();
    let (tx, mut rx) = mpsc::unbounded_channel::<Signal>();
    let first =
        establish(&dir, &tx).map_err(|e| anyhow::anyhow!("watching the policy directory `{}`: {e}", dir.display()))?;
    reloader.watch_up(&state.metrics);
    tokio::spawn(async move {
        let mut watched = Some(first);
        let mut tick = tokio::time::interval(IDENTITY_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut reload = false;
            tokio::select! {
                signal = rx.recv() => match signal {
                    Some(Signal::Files) => reload = true,
                    Some(Signal::Check) => {}
                    Some(Signal::Rewatch) => {
                        watched = None;
                        reload = true;
                    }
                    None => break,
                },
                _ = tick.tick() => {}
                () = async { let _ = stop.wait_for(|v| *v).await; } => break,
            }
            if reload {
                // Editors write several events per save: wait for quiet.
                let first = tokio::time::Instant::now();
                while let Ok(Some(signal)) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                    if signal == Signal::Rewatch {
                        watched = None;
                    }
                    if first.elapsed() >= MAX_DEBOUNCE {
                        break;
                    }
                }
            }
            let now = identity(&dir);
            match now {
                None => {
                    // Dropping the old watch: it watches a directory that is
                    // no longer at the path.
                    watched = None;
                    reloader.watch_lost("the policy directory is missing".to_owned(), &state.metrics);
                    continue;
                }
                Some(id) if watched.as_ref().map(|w| w.identity) != Some(id) => {
                    watched = None;
                    match establish(&dir, &tx) {
                        Ok(w) => {
                            watched = Some(w);
                            reloader.watch_up(&state.metrics);
                            tracing::info!(dir = %dir.display(), "the policy directory was replaced; watching the new one and reloading");
                            reload = true;
                        }
                        Err(e) => {
                            reloader
                                .watch_lost(format!("the policy directory could not be watched: {e}"), &state.metrics);
                            continue;
                        }
                    }
                }
                Some(_) => {}
            }
            if reload {
                reloader.reload(&state).await;
            }
        }
    });
    Ok(())
}
