"""A change notification for every change of what an environment serves.

PostgreSQL sends `NOTIFY splitbase_environment, '<id>:<config_version>'` when the transaction
that inserted an environment, moved its config version, changed its keys or deleted it
commits (`<id>:0` for a deletion). The streaming process listens on that channel
(`serving.streams.changes`); every write that changes what an environment serves already bumps
its version, so no code path can change flags without the notification.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION splitbase_environment_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('splitbase_environment', OLD.id::text || ':0');
        RETURN OLD;
    END IF;
    IF TG_OP = 'INSERT'
       OR NEW.config_version IS DISTINCT FROM OLD.config_version
       OR NEW.client_key IS DISTINCT FROM OLD.client_key
       OR NEW.server_key IS DISTINCT FROM OLD.server_key THEN
        PERFORM pg_notify('splitbase_environment', NEW.id::text || ':' || NEW.config_version::text);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER splitbase_environment_notify
    AFTER INSERT OR UPDATE OR DELETE ON flags_environment
    FOR EACH ROW EXECUTE FUNCTION splitbase_environment_notify();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS splitbase_environment_notify ON flags_environment;
DROP FUNCTION IF EXISTS splitbase_environment_notify();
"""


class Migration(migrations.Migration):

    dependencies = [
        ("base", "0002_environment_roles"),
    ]

    operations = [
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
