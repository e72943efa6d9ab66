//! Who may read an account: its owner and the roles that read everything
//! (`Caller::may_read`). Everyone else gets the same 404 as for an unknown
//! id, so nobody can probe for other people's account ids.

use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Caller;
use crate::state::SharedState;

/// The account `id` if the caller may read it.
pub async fn visible(
    state: &SharedState,
    caller: Caller,
    id: &str,
) -> Result<ledger::accounts::AccountRow, ApiError> {
    let not_found = || ApiError::NotFound(format!("no account {id:?} visible to you"));
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    match ledger::accounts::get(&state.pool, id).await? {
        Some(a) if caller.may_read(a.owner_id) => Ok(a),
        _ => Err(not_found()),
    }
}
