"""API tokens are stored as digests from now on: replace every stored key by its digest (the holders keep working:
they send the key, the authentication hashes it)."""
from django.db import migrations


def hash_existing_tokens(apps, schema_editor):
    from releases.tokens import token_digest

    Token = apps.get_model("authtoken", "Token")
    for token in list(Token.objects.all()):
        user_id, created, key = token.user_id, token.created, token.key
        token.delete()
        Token.objects.create(user_id=user_id, created=created, key=token_digest(key))


class Migration(migrations.Migration):
    dependencies = [("releases", "0004_issue14_audit_hash_chain"), ("authtoken", "0004_alter_tokenproxy_options")]
    operations = [migrations.RunPython(hash_existing_tokens, migrations.RunPython.noop)]
