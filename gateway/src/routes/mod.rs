pub mod accounts;
pub mod auth;
pub mod batches;
pub mod holds;
pub mod ops;
pub mod reversals;
pub mod system;
pub mod transfers;
