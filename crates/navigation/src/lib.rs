//! Navigation: tracked guidewire and lead tips (OpenIGTLink), tracker-to-C-arm registration,
//! projection onto the venogram and snapping to the branch tree. Filled by issue 5.
