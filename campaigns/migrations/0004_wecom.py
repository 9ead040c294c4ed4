import campaigns.models.core
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0003_live_codes")]

    operations = [
        migrations.AddField(
            model_name='outreachsettings',
            name='wecom_aes_key',
            field=models.CharField(blank=True, max_length=43, validators=[campaigns.models.core.validate_encoding_aes_key], verbose_name='WeCom EncodingAESKey'),
        ),
        migrations.AddField(
            model_name='outreachsettings',
            name='wecom_callback_token',
            field=models.CharField(blank=True, max_length=64, verbose_name='WeCom callback token'),
        ),
        migrations.CreateModel(
            name='WeComCallback',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=64)),
                ('event', models.CharField(blank=True, max_length=60, verbose_name='event')),
                ('change_type', models.CharField(blank=True, max_length=60, verbose_name='change type')),
                ('userid', models.CharField(blank=True, max_length=64, verbose_name='WeCom user id')),
                ('external_userid', models.CharField(blank=True, max_length=64, verbose_name='WeCom external user id')),
                ('payload', models.JSONField(default=dict, verbose_name='message')),
                ('outcome', models.CharField(choices=[('done', 'Handled'), ('ignored', 'Recorded only'), ('failed', 'Failed')], default='done', max_length=8, verbose_name='outcome')),
                ('detail', models.CharField(blank=True, max_length=300, verbose_name='detail')),
                ('received_at', models.DateTimeField(verbose_name='received at')),
                ('member', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='members.member')),
                ('tenant', models.ForeignKey(editable=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='scrm.tenant')),
            ],
            options={
                'verbose_name': 'WeCom callback',
                'verbose_name_plural': 'WeCom callbacks',
            },
        ),
        migrations.CreateModel(
            name='WeComMarkedTag',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('marked_at', models.DateTimeField()),
                ('member', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='members.member')),
                ('tag', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tagging.tag')),
                ('tenant', models.ForeignKey(editable=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='scrm.tenant')),
            ],
        ),
        migrations.CreateModel(
            name='WeComTagLink',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('wecom_id', models.CharField(max_length=64)),
                ('name', models.CharField(max_length=60)),
                ('synced_at', models.DateTimeField()),
                ('group', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tagging.taggroup')),
                ('tag', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tagging.tag')),
                ('tenant', models.ForeignKey(editable=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='scrm.tenant')),
            ],
        ),
        migrations.CreateModel(
            name='WeComToken',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('corp_id', models.CharField(max_length=64)),
                ('access_token', models.CharField(max_length=600)),
                ('expires_at', models.DateTimeField()),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('tenant', models.ForeignKey(editable=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='scrm.tenant')),
            ],
        ),
        migrations.AddIndex(
            model_name='wecomcallback',
            index=models.Index(fields=['tenant', 'received_at'], name='wecomcallback_tenant_received'),
        ),
        migrations.AddConstraint(
            model_name='wecomcallback',
            constraint=models.UniqueConstraint(fields=('tenant', 'key'), name='wecomcallback_key_unique'),
        ),
        migrations.AddConstraint(
            model_name='wecommarkedtag',
            constraint=models.UniqueConstraint(fields=('tenant', 'member', 'tag'), name='wecommarkedtag_unique'),
        ),
        migrations.AddConstraint(
            model_name='wecomtaglink',
            constraint=models.UniqueConstraint(condition=models.Q(('tag__isnull', True)), fields=('tenant', 'group'), name='wecomtaglink_one_per_group'),
        ),
        migrations.AddConstraint(
            model_name='wecomtaglink',
            constraint=models.UniqueConstraint(condition=models.Q(('tag__isnull', False)), fields=('tenant', 'tag'), name='wecomtaglink_one_per_tag'),
        ),
        migrations.AddConstraint(
            model_name='wecomtaglink',
            constraint=models.UniqueConstraint(fields=('tenant', 'wecom_id'), name='wecomtaglink_wecom_id_unique'),
        ),
        migrations.AddConstraint(
            model_name='wecomtoken',
            constraint=models.UniqueConstraint(fields=('tenant', 'corp_id'), name='wecomtoken_one_per_corp'),
        ),
    ]
