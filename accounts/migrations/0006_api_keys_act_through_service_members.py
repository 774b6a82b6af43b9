"""Each existing API key gets its own service member (the key's role: admin, as its creator had
everything before teams), so it keeps working when its creator leaves the organisation."""

from django.contrib.auth.hashers import make_password
from django.db import migrations


def forwards(apps, schema_editor):
    ApiKey = apps.get_model("accounts", "ApiKey")
    User = apps.get_model("accounts", "User")
    for key in ApiKey.objects.select_related("user").order_by("pk"):
        if key.user.is_api_service:
            continue
        service = User.objects.create(
            email=f"{key.prefix}@api-keys.invalid",
            password=make_password(None),
            full_name=f"API key “{key.name}”",
            role=key.user.role,
            team_role="admin",
            organisation_id=key.organisation_id,
            is_api_service=True,
            is_active=key.revoked_at is None,
        )
        key.user = service
        key.save(update_fields=["user"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_team_roles_invitations_history")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
