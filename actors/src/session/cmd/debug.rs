//! `Debug`: the fault-injection hooks (`rtmctl debug panic|stall ...`), handed to the actor they
//! target. A daemon built without the `fault-injection` feature refuses them all.

use rtm_proto::wire::{DebugAction, DebugTarget, Failure, Reply};

use crate::session::{Services, Session};

/// Whether the request is aimed at the session that received it.
pub fn targets_session(action: &DebugAction) -> bool {
    action.target() == DebugTarget::Session
}

/// The answer of a daemon built without the fault-injection hooks.
#[cfg_attr(feature = "fault-injection", allow(dead_code))]
fn no_hooks(action: DebugAction) -> Failure {
    Failure::Unsupported(format!(
        "debug request {action:?}: this rtmd was built without the fault-injection feature"
    ))
}

/// Hands a debug request to the actor it targets.
#[cfg(feature = "fault-injection")]
pub async fn deliver(svc: &Services, action: DebugAction) -> Result<Reply, Failure> {
    use crate::faults::Inject;
    use actix::MailboxError;
    use DebugTarget as T;
    let target = action.target();
    let lost = |e: MailboxError| Failure::Internal(format!("{} actor: {e}", target.name()));
    let r = match target {
        T::Route => svc.route.send(Inject(action)).await.map_err(lost)?,
        T::Arp => svc.arp.send(Inject(action)).await.map_err(lost)?,
        T::Neigh => svc.neighbours()?.send(Inject(action)).await.map_err(lost)?,
        T::Broker => svc.broker.send(Inject(action)).await.map_err(lost)?,
        T::Registry => svc.registry.send(Inject(action)).await.map_err(lost)?,
        T::Listener => match svc.listener.get() {
            Some(l) => l.send(Inject(action)).await.map_err(lost)?,
            None => Err(Failure::Internal("the listener has not started".into())),
        },
        T::Kernel | T::KernelExport => {
            let (actor, flag) = match target {
                T::Kernel => (&svc.kernel_import, "--kernel import"),
                _ => (&svc.kernel_export, "--kernel export"),
            };
            match actor.get() {
                Some(a) => a.send(Inject(action)).await.map_err(lost)?,
                None => Err(Failure::Unsupported(format!(
                    "the {} actor does not run (rtmd was started without {flag})",
                    target.name()
                ))),
            }
        }
        T::Session => unreachable!("handled by the session itself"),
    };
    r.map(|()| Reply::Done { seq: 0 })
}

#[cfg(not(feature = "fault-injection"))]
pub async fn deliver(_svc: &Services, action: DebugAction) -> Result<Reply, Failure> {
    Err(no_hooks(action))
}

impl Session {
    /// A debug request aimed at this session itself.
    #[cfg(feature = "fault-injection")]
    pub(in crate::session) fn debug_here(&mut self, action: DebugAction) -> Result<Reply, Failure> {
        match action {
            DebugAction::Stall { ms, .. } => {
                crate::faults::stall(ms);
                Ok(Reply::Done { seq: 0 })
            }
            DebugAction::Panic { .. } => {
                panic!("injected panic in session {} (handler)", self.id)
            }
        }
    }

    #[cfg(not(feature = "fault-injection"))]
    pub(in crate::session) fn debug_here(&mut self, action: DebugAction) -> Result<Reply, Failure> {
        Err(no_hooks(action))
    }
}
