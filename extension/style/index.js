import './base.css';
import './sidebar.css';
import './cellops.css';
import './widgets.css';
import './review.css';
import './activity.css';
import './deploy.css';
import './pipelines.css';
