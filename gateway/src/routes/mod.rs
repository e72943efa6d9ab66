pub mod accounts;
pub mod auth;
pub mod batches;
pub mod ops;
pub mod statements;
pub mod system;
pub mod transfers;
