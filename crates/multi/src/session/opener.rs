//! One long-lived thread that enters namespaces to open sockets in them, for the whole
//! session: sockets keep the namespace they are made in, and this thread, once inside,
//! lets `NetNs::run` work without a thread of its own. Before, every capture and every
//! link socket cost a thread: its creation, and a malloc arena and stack mapping that
//! glibc keeps. The session's own thread never changes namespace.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::mpsc;
use std::thread::JoinHandle;

use nix::sched::CloneFlags;
use nsring_netns::NetNs;

use crate::{Error, Result};

/// A job gets the thread's home namespace: its descriptor and nsfs inode.
type Job = Box<dyn FnOnce(&OwnedFd, u64) + Send>;

#[derive(Debug)]
pub(super) struct Opener {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Opener {
    pub(super) fn new() -> Result<Opener> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("nsring-netns".into())
            .spawn(move || {
                let opened = std::fs::File::open("/proc/thread-self/ns/net")
                    .and_then(|f| Ok((f.metadata()?.ino(), OwnedFd::from(f))));
                let (inode, home) = match opened {
                    Ok(x) => x,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                for job in rx {
                    job(&home, inode);
                }
            })
            .map_err(|e| Error::sys("spawn thread", "namespace opener", e))?;
        ready_rx
            .recv()
            .unwrap_or_else(|_| Err(std::io::ErrorKind::BrokenPipe.into()))
            .map_err(|e| Error::sys("open", "/proc/thread-self/ns/net", e))?;
        Ok(Opener {
            jobs: Some(tx),
            thread: Some(thread),
        })
    }

    /// Runs `f` on the opener thread while it is inside `ns`, then brings the thread home.
    pub(super) fn run<T, F>(&self, ns: &NetNs, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&NetNs) -> T + Send + 'static,
    {
        let ns = ns.try_clone()?;
        let (tx, rx) = mpsc::sync_channel::<Result<T>>(1);
        let job: Job = Box::new(move |home: &OwnedFd, home_inode: u64| {
            let what = ns.spec().to_string();
            if ns.inode() == home_inode {
                // its own namespace: no setns (which would need CAP_SYS_ADMIN)
                let _ = tx.send(Ok(f(&ns)));
                return;
            }
            let r = match nix::sched::setns(ns.as_fd(), CloneFlags::CLONE_NEWNET) {
                Ok(()) => {
                    let v = f(&ns);
                    // The way back cannot fail for a thread that could get in; if it did,
                    // this thread must not open anything else.
                    nix::sched::setns(home.as_fd(), CloneFlags::CLONE_NEWNET)
                        .expect("returning to the home network namespace");
                    Ok(v)
                }
                Err(e) => Err(Error::sys("setns", what, e.into())),
            };
            let _ = tx.send(r);
        });
        let gone = || {
            Error::sys(
                "send",
                "namespace opener",
                std::io::ErrorKind::BrokenPipe.into(),
            )
        };
        self.jobs
            .as_ref()
            .ok_or_else(gone)?
            .send(job)
            .map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }
}

impl Drop for Opener {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
