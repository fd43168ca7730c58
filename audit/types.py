"""Who performs a write: a user in the admin, a management token, or the system itself."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Actor:
    label: str
    user_id: int | None = None
    via: str = "system"  # "admin", "api", "command", "system"

    @classmethod
    def system(cls, label: str = "system") -> "Actor":
        return cls(label=label, user_id=None, via="system")
