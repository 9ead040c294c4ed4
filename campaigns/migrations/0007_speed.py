import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0006_performance")]

    operations = [
        migrations.AlterField(
            model_name="enrolment",
            name="tenant",
            field=models.ForeignKey(db_index=False, editable=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="scrm.tenant"),
        ),
        migrations.AlterField(
            model_name="guidetask",
            name="tenant",
            field=models.ForeignKey(db_index=False, editable=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="scrm.tenant"),
        ),
        migrations.AlterField(
            model_name="message",
            name="tenant",
            field=models.ForeignKey(db_index=False, editable=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="scrm.tenant"),
        ),
        migrations.AlterField(
            model_name="steprun",
            name="tenant",
            field=models.ForeignKey(db_index=False, editable=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="scrm.tenant"),
        ),
    ]
