CREATE TABLE activity (
	id SERIAL NOT NULL, 
	at FLOAT NOT NULL, 
	kind VARCHAR(64) NOT NULL, 
	severity VARCHAR(16) NOT NULL, 
	group_id VARCHAR(64), 
	channel VARCHAR(64), 
	version VARCHAR(64), 
	instance VARCHAR(64), 
	message TEXT NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE changes (
	id SERIAL NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	data TEXT NOT NULL, 
	at FLOAT NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE channel_history (
	id SERIAL NOT NULL, 
	channel VARCHAR(64) NOT NULL, 
	version VARCHAR(64) NOT NULL, 
	at FLOAT NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_channel_history_channel ON channel_history (channel);

CREATE INDEX ix_channel_history_version ON channel_history (version);

CREATE TABLE channels (
	name VARCHAR(64) NOT NULL, 
	version VARCHAR(64), 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (name)
);

CREATE TABLE groups (
	id VARCHAR(64) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	track VARCHAR(255) NOT NULL, 
	channel VARCHAR(64) NOT NULL, 
	updates_enabled BOOLEAN NOT NULL, 
	max_updates_per_period INTEGER NOT NULL, 
	period_seconds INTEGER NOT NULL, 
	max_concurrent INTEGER NOT NULL, 
	update_timeout_seconds INTEGER NOT NULL, 
	safe_mode BOOLEAN NOT NULL, 
	office_hours BOOLEAN NOT NULL, 
	timezone VARCHAR(64) NOT NULL, 
	rollout_in_progress BOOLEAN NOT NULL, 
	rollout_version VARCHAR(64), 
	halted_reason TEXT, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (track)
);

CREATE TABLE instance_history (
	id SERIAL NOT NULL, 
	machine_id VARCHAR(64) NOT NULL, 
	at FLOAT NOT NULL, 
	status INTEGER NOT NULL, 
	version VARCHAR(64) NOT NULL, 
	reason TEXT, 
	event_type INTEGER, 
	event_result INTEGER, 
	errorcode INTEGER, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_instance_history_machine_id ON instance_history (machine_id);

CREATE TABLE instances (
	machine_id VARCHAR(64) NOT NULL, 
	ip VARCHAR(64) NOT NULL, 
	version VARCHAR(64) NOT NULL, 
	track VARCHAR(255) NOT NULL, 
	group_id VARCHAR(64), 
	status INTEGER NOT NULL, 
	status_reason TEXT, 
	last_check FLOAT NOT NULL, 
	last_update_version VARCHAR(64), 
	last_update_granted_at FLOAT, 
	update_in_progress BOOLEAN NOT NULL, 
	oem VARCHAR(255) NOT NULL, 
	oemversion VARCHAR(255) NOT NULL, 
	alephversion VARCHAR(64) NOT NULL, 
	board VARCHAR(64) NOT NULL, 
	bootid VARCHAR(64) NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (machine_id)
);

CREATE INDEX ix_instances_group_granted ON instances (group_id, last_update_granted_at);

CREATE INDEX ix_instances_group_status ON instances (group_id, status);

CREATE INDEX ix_instances_group_update_version ON instances (group_id, last_update_version);

CREATE TABLE releases (
	version VARCHAR(64) NOT NULL, 
	filename VARCHAR(255) NOT NULL, 
	size INTEGER NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	sha1 VARCHAR(64) NOT NULL, 
	signed BOOLEAN NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (version)
);

CREATE TABLE schema_version (
	version INTEGER NOT NULL, 
	applied_at FLOAT NOT NULL
);
