//! `DashboardUrl`: a token for the dashboard, bound to the uid the kernel reports for this
//! socket, so no secret file has to be shared with the browser's user.

use rtm_proto::wire::{DashboardUrl, Failure, Reply};
use tracing::info;

use crate::session::{may_change, Peer, Services};

pub fn url(svc: &Services, peer: &Peer) -> Result<Reply, Failure> {
    let Some(dash) = &svc.dashboard else {
        return Err(Failure::Unsupported(
            "this rtmd serves no dashboard: start it with --http-listen ADDR:PORT".into(),
        ));
    };
    let may = may_change(svc, peer);
    let (token, _) = dash.tokens.mint(peer.uid, may);
    info!(
        uid = peer.uid,
        pid = peer.pid,
        may_change = may,
        "dashboard token minted"
    );
    Ok(Reply::DashboardUrl(DashboardUrl {
        url: format!("{}/?token={token}", dash.base_url),
        uid: peer.uid,
        may_change: may,
        expires_s: dash.tokens.ttl().as_secs(),
    }))
}
