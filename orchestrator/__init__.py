"""ontap-rekey: rotate NetApp ONTAP AWS KMS key-encryption keys across a fleet."""

__version__ = "0.1.0"
