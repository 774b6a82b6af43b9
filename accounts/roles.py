"""The admin groups for staff roles, and exactly the permissions each needs.

Apps declare what their staff need on their AppConfig (`staff_permissions`:
{"mediator": ["app_label.codename", …], "vetting": [...]}); the groups are synced after migrate.
"""

from typing import Any

from django.apps import apps

from tradeassure.core.app_hooks import is_last_migrated_app

GROUP_FOR_ROLE = {"mediator": "Mediators", "vetting": "Vetting staff"}


def declared_staff_permissions() -> dict[str, set[str]]:
    wanted: dict[str, set[str]] = {role: set() for role in GROUP_FOR_ROLE}
    for config in apps.get_app_configs():
        for role, codes in getattr(config, "staff_permissions", {}).items():
            wanted[role].update(codes)
    return wanted


def sync_staff_groups(sender: Any = None, using: str = "default", **kwargs: Any) -> None:
    if not is_last_migrated_app(sender):
        return
    from django.contrib.auth.models import Group, Permission

    for role, codes in declared_staff_permissions().items():
        group, _ = Group.objects.using(using).get_or_create(name=GROUP_FOR_ROLE[role])
        permissions = []
        for code in sorted(codes):
            app_label, codename = code.split(".", 1)
            permission = (
                Permission.objects.using(using)
                .filter(content_type__app_label=app_label, codename=codename)
                .first()
            )
            if permission is not None:
                permissions.append(permission)
        group.permissions.set(permissions)
