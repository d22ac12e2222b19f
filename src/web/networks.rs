//! `/sellers`: seller networks and repeat sellers; a network's page, its graph, and drafting
//! its open listings in one action.

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Serialize;

use super::auth::{CsrfOnly, CurrentUser, Posted};
use super::pages::{Flash, page, v};
use super::{WebError, WebState};
use crate::sellers::{self, Network};
use crate::store::Role;

/// A network as the list shows it.
#[derive(Serialize)]
struct NetworkRow<'a> {
    id: &'a str,
    shops: Vec<String>,
    platforms: Vec<String>,
    listings: usize,
    open: usize,
    removed: usize,
    signals: Vec<&'static str>,
}

fn row<'a>(n: &'a Network, state: &WebState) -> NetworkRow<'a> {
    let mut platforms: Vec<&str> = n.shops.iter().map(|s| s.platform.as_str()).collect();
    platforms.sort_unstable();
    platforms.dedup();
    NetworkRow {
        id: &n.id,
        shops: n.shops.iter().map(|s| s.seller.clone()).collect(),
        platforms: platforms
            .into_iter()
            .map(|p| state.platform_name(p))
            .collect(),
        listings: n.listings(),
        open: n.open(),
        removed: n.removed(),
        signals: n.signals(),
    }
}

pub(super) async fn sellers(
    State(state): State<WebState>,
    user: CurrentUser,
) -> Result<Html<String>, WebError> {
    let networks = sellers::load(state.store()).await?;
    let repeat = state.store().repeat_sellers(2).await?;
    state.render(
        "sellers.html",
        context! {
            page => v(page(&user, "sellers", None)),
            networks => v(networks.iter().map(|n| row(n, &state)).collect::<Vec<_>>()),
            sellers => v(repeat),
        },
    )
}

async fn find(state: &WebState, id: &str) -> Result<Network, WebError> {
    sellers::load(state.store())
        .await?
        .into_iter()
        .find(|n| n.id == id)
        .ok_or(WebError::NotFound)
}

pub(super) async fn network(
    State(state): State<WebState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
) -> Result<Html<String>, WebError> {
    let network = find(&state, &id).await?;
    let svg = network.svg(&|k: &str| state.platform_name(k));
    let links: Vec<_> = network
        .links
        .iter()
        .map(|l| {
            context! {
                a => network.shops[l.a].seller.clone(),
                b => network.shops[l.b].seller.clone(),
                signal => l.signal.as_str(),
                detail => l.detail.clone(),
            }
        })
        .collect();
    state.render(
        "network.html",
        context! {
            page => v(page(&user, "sellers", flash.message())),
            network => v(&network),
            summary => v(row(&network, &state)),
            links => links,
            svg => svg,
        },
    )
}

/// Drafts every open listing of the network into notices of its own.
pub(super) async fn draft(
    State(state): State<WebState>,
    Path(id): Path<String>,
    posted: Posted<CsrfOnly>,
) -> Result<Response, WebError> {
    posted.user.require(Role::Reviewer)?;
    let network = find(&state, &id).await?;
    let summary = crate::notice::draft_network(
        state.store(),
        state.definitions(),
        &network,
        &posted.user.actor(),
    )
    .await
    .map_err(|e| WebError::Conflict(e.to_string()))?;
    let to = if summary.listings == 0 {
        format!("/sellers/networks/{}?done=network_nothing", network.id)
    } else {
        format!(
            "/sellers/networks/{}?done=network_drafted&n={}",
            network.id, summary.listings
        )
    };
    Ok(Redirect::to(&to).into_response())
}
