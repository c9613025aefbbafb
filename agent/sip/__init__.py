"""The live agent's SIP side: the pjsua2 B2BUA workers, their supervisor and wire formats."""
